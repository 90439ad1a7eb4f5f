package fstore

// RawHit returns the raw cgo call on a hit of key (rawHit), for the
// benchmark, and the function that frees what it holds.
func RawHit(s *Store, key Key) (hit func() error, free func(), err error) {
	ckey, err := key.toC()
	if err != nil {
		return nil, nil, err
	}
	return func() error { return s.rawHit(ckey) }, ckey.free, nil
}
