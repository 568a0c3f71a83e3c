package engine

import (
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/container"
	bolt "go.etcd.io/bbolt"
)

// TestSaveKeepsLatestAndNothingAfterDelete: saves asked for from several
// goroutines leave the latest state on disk, and a save that comes after
// the record was deleted (a late start's or health check's) writes nothing.
func TestSaveKeepsLatestAndNothingAfterDelete(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "engine.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketContainers); return err }); err != nil {
		t.Fatal(err)
	}
	e := &Engine{db: db}
	c := &Container{Record: Record{ID: "c1", HostConfig: &container.HostConfig{}}}
	stored := func() (string, bool) {
		var b []byte
		_ = db.View(func(tx *bolt.Tx) error {
			b = append(b, tx.Bucket(bucketContainers).Get([]byte("c1"))...)
			return nil
		})
		if b == nil {
			return "", false
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return string(r.State.Status), true
	}

	var wg sync.WaitGroup
	for _, st := range []container.ContainerState{container.StateRunning, container.StateExited} {
		c.setState(func(s *State) { s.Status = st })
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.save(c) }()
	}
	wg.Wait()
	if st, ok := stored(); !ok || st != string(container.StateExited) {
		t.Errorf("after concurrent saves: %q (%v), want the latest state, exited", st, ok)
	}

	// What cleanupRemoved does to the record.
	c.saveMu.Lock()
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketContainers).Delete([]byte("c1")) })
	c.gone = err == nil
	c.saveMu.Unlock()
	if err := e.save(c); err != nil {
		t.Fatal(err)
	}
	if st, ok := stored(); ok {
		t.Errorf("a save after the delete wrote the record back (%q)", st)
	}
}
