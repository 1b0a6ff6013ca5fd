package runtime

// EncodeForTest and DecodeForTest give the external tests of this package
// (runtime_test) the codec that queues and caches use.
func EncodeForTest(v any) ([]byte, error) { return encode(v, DefaultMaxPayloadBytes) }

func DecodeForTest[T any](data []byte) (T, error) { return decode[T](data, DefaultMaxPayloadBytes) }
