package fstore_test

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/libfstore/libfstore/bindings/go/fstore"
)

func canonical(t *testing.T, key fstore.Key) (string, string) {
	t.Helper()
	config, id, err := key.Canonical()
	if err != nil {
		t.Fatalf("Canonical(%+v): %v", key, err)
	}
	return config, id
}

func TestKeyCanonicalNamesEntriesAsTheLibraryDoes(t *testing.T) {
	withConfig := func(config string) fstore.Key {
		k := testKey("ES=F")
		k.Config = config
		return k
	}
	// The C API test's values.
	config, idA := canonical(t, withConfig(`{"b": 1, "a": [true, null, 1.0]}`))
	if config != `{"a":[true,null,1],"b":1}` {
		t.Fatalf("canonical config %q", config)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(idA) {
		t.Fatalf("entry id %q is not 64 hex digits", idA)
	}
	if _, idB := canonical(t, withConfig(" {\"a\":[true,null,1],\"b\":1.0}\n")); idB != idA {
		t.Fatalf("equal configs, different ids: %s, %s", idA, idB)
	}
	later := withConfig(`{"a":[true,null,1],"b":1}`)
	later.End = later.End.AddDate(0, 0, 1)
	if _, idC := canonical(t, later); idC == idA {
		t.Fatal("a different end date gave the same id")
	}
	_, big := canonical(t, withConfig(`{"t": 1700000000000000001}`))
	_, big2 := canonical(t, withConfig(`{"t": 1700000000000000000}`))
	if big == big2 {
		t.Fatal("integers beyond double precision gave the same id")
	}
	config1, id1 := canonical(t, withConfig(`{"b":2,"a":1.0}`))
	config2, id2 := canonical(t, withConfig(`{"a":1,"b":2}`))
	if config1 != `{"a":1,"b":2}` || config2 != config1 || id1 != id2 {
		t.Fatalf("{\"b\":2,\"a\":1.0} gives %q %s, {\"a\":1,\"b\":2} gives %q %s", config1, id1, config2, id2)
	}
	if config, _ := canonical(t, withConfig("")); config != "{}" {
		t.Fatalf("the empty config is %q, want {}", config)
	}

	// The id is the one the store files the entry under.
	store := openStore(t)
	if err := store.Put(withConfig(`{"a":1,"b":2}`), sample(cAlloc, 2, "c")); err != nil {
		t.Fatal(err)
	}
	if err := store.Flush(); err != nil {
		t.Fatal(err)
	}
	entries, err := store.Entries()
	if err != nil {
		t.Fatal(err)
	}
	defer entries.Release()
	var ids []string
	for entries.Next() {
		rec := entries.RecordBatch()
		col := rec.Column(rec.Schema().FieldIndices("entry_id")[0]).(*array.String)
		for i := 0; i < col.Len(); i++ {
			ids = append(ids, col.Value(i))
		}
	}
	if len(ids) != 1 || ids[0] != id1 {
		t.Fatalf("the manifest lists entry ids %v, Canonical gave %s", ids, id1)
	}

	// Invalid keys: the library's status and message.
	inverted := testKey("ES=F")
	inverted.Start, inverted.End = inverted.End, inverted.Start
	_, _, err = inverted.Canonical()
	wantError(t, err, fstore.ErrInvalidArgument, "before start_date")
	_, _, err = withConfig(`{"a":1,"a":2}`).Canonical()
	wantError(t, err, fstore.ErrInvalidArgument, "duplicate")
	_, _, err = withConfig("{\"a\":\"\x00\"}").Canonical()
	wantError(t, err, fstore.ErrInvalidArgument, "NUL")
}

func TestVersionNumberMatchesVersion(t *testing.T) {
	n := fstore.VersionNumber()
	if got := fmt.Sprintf("%d.%d.%d", n/1000000, n/1000%1000, n%1000); got != fstore.Version() {
		t.Fatalf("VersionNumber %d reads %s, Version is %s", n, got, fstore.Version())
	}
	if n/1000000 != fstore.HeaderVersionNumber/1000000 || n < fstore.HeaderVersionNumber {
		t.Fatalf("library %d is not compatible with header %d", n, fstore.HeaderVersionNumber)
	}
}
