package metadata

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/hako-project/hako/errdefs"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

func TestRecordsRefsLeasesInTransactions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id := digest.FromString("config")
	err = db.Update(func(tx *Tx) error {
		if err := tx.PutImage(Image{ID: id}); err != nil {
			return err
		}
		if err := tx.PutRef("docker.io/library/a:1", id); err != nil {
			return err
		}
		return tx.PutLease(Lease{ID: "l1", Blobs: []digest.Digest{id}})
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failing transaction changes nothing.
	boom := errors.New("boom")
	err = db.Update(func(tx *Tx) error {
		tx.DeleteImage(id)
		tx.PutRef("docker.io/library/b:1", id)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if _, err := tx.Image(id); err != nil {
			t.Errorf("image lost in a rolled-back transaction: %v", err)
		}
		if _, err := tx.Ref("docker.io/library/b:1"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("ref from a rolled-back transaction: %v", err)
		}
		refs, _ := tx.RefsOf(id)
		if len(refs) != 1 {
			t.Errorf("refs %v", refs)
		}
		leases, _ := tx.Leases()
		if len(leases) != 1 || leases[0].Blobs[0] != id {
			t.Errorf("leases %+v", leases)
		}
		return nil
	})
	db.Close()
	// A database from a future schema is refused, not misread.
	raw, _ := bolt.Open(path, 0o600, nil)
	raw.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("99")) })
	raw.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("opened a schema 99 database")
	}
}
