package runtime

import "github.com/redis/go-redis/v9"

// Do runs fn with the DataStore's command client, registered so that
// Close waits for it, and returns fn's error as an *Error for op and key
// ("storagegen: <op> <key>: …"), as every call of the typed API does. The
// client is a *redis.ClusterClient on a cluster and a *redis.Client
// otherwise (a Sentinel group's is one that follows the primary). It is
// for tools that read what the typed API has no call for, such as
// storagegen inspect, which SCANs every primary for the keys of a
// declaration and reads the oldest items of a queue with LRANGE; counts
// come from Stats. fn reports a miss (redis.Nil) itself, not as an error.
func (ds *DataStore) Do(op, key string, fn func(cl redis.UniversalClient) error) error {
	return ds.Connection.call(op, key, fn)
}

// DecodeAs decodes data into a fresh value of dst's element type (dst is a
// non-nil pointer) and stores it there, as every typed call decodes a
// payload: the same codec, the same refusal of a bare null, the same
// MaxPayloadBytes default. Its error wraps ErrDecode (or
// ErrPayloadTooLarge, ErrInvalidArgument for a bad dst) and names the
// failing field and its JSON pointer, never a value; typeName stands for
// the type in it, for a type made with reflect at run time (storagegen
// inspect builds the schema's payload types that way), whose own name is
// its whole struct literal. An empty typeName keeps the Go name.
func DecodeAs(data []byte, dst any, typeName string) error {
	err := decodeInto(data, dst, DefaultMaxPayloadBytes)
	if de, ok := err.(*decodeError); ok && typeName != "" {
		de.typ = typeName
	}
	return err
}
