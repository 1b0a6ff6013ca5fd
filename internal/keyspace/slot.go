package keyspace

import "strings"

// SlotCount is the number of hash slots of a Redis Cluster.
const SlotCount = 16384

// HashTag returns the part of key that Redis Cluster hashes: what lies
// between the first '{' and the first '}' after it, when that is not
// empty; otherwise the whole key.
func HashTag(key string) string {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			return key[open+1 : open+1+n]
		}
	}
	return key
}

// Slot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of its
// hash tag, modulo SlotCount. Every key of one queue has the queue's name
// as its hash tag, so all of them are in one slot, and one script may
// touch them all.
func Slot(key string) int {
	return int(crc16(HashTag(key))) % SlotCount
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), as Redis
// Cluster computes it.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
