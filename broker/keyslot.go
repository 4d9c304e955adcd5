package broker

import "bytes"

// Redis Cluster's key-to-slot mapping: CRC16 (XMODEM: polynomial 0x1021,
// initial value 0) of the key, or of its hash tag, modulo 16384. ordo has
// one shard, so slots only matter to what clients compute (CLUSTER
// KEYSLOT); they must agree with Redis bit for bit, which the
// differential test checks.

const clusterSlots = 16384

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^c]
	}
	return crc
}

// keySlot is the slot of key: only the part between the first '{' and the
// next '}' counts when that part is not empty (Redis's hash tags).
func keySlot(key []byte) int {
	if i := bytes.IndexByte(key, '{'); i >= 0 {
		if j := bytes.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % clusterSlots
}
