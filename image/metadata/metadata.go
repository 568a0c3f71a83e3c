// Package metadata keeps hako's image records in a bbolt database: which
// images exist (by ID, the config digest), which names point at them, and
// which leases protect blobs and snapshots that an operation under way is
// still writing. Every change is one bbolt transaction, so a crash leaves
// either the old or the new state. Blob bytes and snapshot files live
// elsewhere (packages content and snapshot).
//
// Buckets (schema v1):
//
//	images  ID ("sha256:<hex>")        -> JSON Image
//	refs    name ("docker.io/x/y:tag") -> image ID
//	leases  lease ID                   -> JSON Lease
package metadata

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/hako-project/hako/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketImages = []byte("images")
	bucketRefs   = []byte("refs")
	bucketLeases = []byte("leases")
	bucketMeta   = []byte("meta")
	keySchema    = []byte("schema")
	schemaV1     = []byte("1")
)

// Image is the record of one image. Layers and DiffIDs are copied from the
// manifest and config so GC and unpack need not parse blobs.
type Image struct {
	ID       digest.Digest        `json:"id"`
	Manifest ocispec.Descriptor   `json:"manifest"`
	Config   ocispec.Descriptor   `json:"config"`
	Layers   []ocispec.Descriptor `json:"layers"`
	DiffIDs  []digest.Digest      `json:"diffIDs"`
	Platform ocispec.Platform     `json:"platform"`
	// Created is the image's creation time from its config.
	Created time.Time `json:"created"`
	// Added is when this store first recorded the image.
	Added time.Time `json:"added"`
	// RepoDigests are the "name@digest" forms the image was pulled or pushed
	// as (the index digest when it came from a multi-platform index).
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Parent is the image a commit was made from (docker's Parent);
	// empty for pulled, loaded and imported images.
	Parent digest.Digest `json:"parent,omitempty"`
}

// Lease protects blobs and snapshots from GC while an operation that
// created them has not yet recorded an image that references them.
type Lease struct {
	ID        string          `json:"id"`
	Created   time.Time       `json:"created"`
	Blobs     []digest.Digest `json:"blobs,omitempty"`
	Snapshots []string        `json:"snapshots,omitempty"`
}

// DB is the metadata database.
type DB struct {
	db *bolt.DB
}

// Open opens or creates the database at path. bbolt's file lock makes a
// second process on the same state root wait and then fail, which is what
// keeps two daemons off one store.
func Open(path string) (*DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open image metadata %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketRefs, bucketLeases, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		if v := m.Get(keySchema); v != nil && string(v) != string(schemaV1) {
			return fmt.Errorf("schema version %s is not supported (want %s)", v, schemaV1)
		}
		return m.Put(keySchema, schemaV1)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init image metadata %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Tx is one transaction. Methods must not be called after the function
// given to View or Update returns.
type Tx struct{ tx *bolt.Tx }

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(*Tx) error) error {
	return d.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

// Update runs fn in a read-write transaction; all its changes are kept or
// none is.
func (d *DB) Update(fn func(*Tx) error) error {
	return d.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

func getJSON(b *bolt.Bucket, key string, v any, what string) error {
	raw := b.Get([]byte(key))
	if raw == nil {
		return fmt.Errorf("%s %s: %w", what, key, errdefs.ErrNotFound)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode %s %s: %w", what, key, err)
	}
	return nil
}

func putJSON(b *bolt.Bucket, key string, v any, what string) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", what, key, err)
	}
	return b.Put([]byte(key), raw)
}

// Image returns the record of image id.
func (t *Tx) Image(id digest.Digest) (Image, error) {
	var img Image
	err := getJSON(t.tx.Bucket(bucketImages), id.String(), &img, "image")
	return img, err
}

// PutImage stores img under img.ID.
func (t *Tx) PutImage(img Image) error {
	return putJSON(t.tx.Bucket(bucketImages), img.ID.String(), img, "image")
}

// DeleteImage removes the record of image id (not its names).
func (t *Tx) DeleteImage(id digest.Digest) error {
	return t.tx.Bucket(bucketImages).Delete([]byte(id.String()))
}

// Images returns every image record, ordered by ID.
func (t *Tx) Images() ([]Image, error) {
	var out []Image
	err := t.tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		var img Image
		if err := json.Unmarshal(v, &img); err != nil {
			return fmt.Errorf("decode image %s: %w", k, err)
		}
		out = append(out, img)
		return nil
	})
	return out, err
}

// Ref returns the image ID that name points at.
func (t *Tx) Ref(name string) (digest.Digest, error) {
	v := t.tx.Bucket(bucketRefs).Get([]byte(name))
	if v == nil {
		return "", fmt.Errorf("reference %s: %w", name, errdefs.ErrNotFound)
	}
	return digest.Digest(v), nil
}

// PutRef points name at image id, replacing an earlier target.
func (t *Tx) PutRef(name string, id digest.Digest) error {
	return t.tx.Bucket(bucketRefs).Put([]byte(name), []byte(id.String()))
}

// DeleteRef removes name.
func (t *Tx) DeleteRef(name string) error {
	return t.tx.Bucket(bucketRefs).Delete([]byte(name))
}

// Refs returns all names and their image IDs.
func (t *Tx) Refs() (map[string]digest.Digest, error) {
	out := map[string]digest.Digest{}
	err := t.tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
		out[string(k)] = digest.Digest(v)
		return nil
	})
	return out, err
}

// RefsOf returns the sorted names pointing at image id.
func (t *Tx) RefsOf(id digest.Digest) ([]string, error) {
	var out []string
	err := t.tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
		if string(v) == id.String() {
			out = append(out, string(k))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Lease returns lease id.
func (t *Tx) Lease(id string) (Lease, error) {
	var l Lease
	err := getJSON(t.tx.Bucket(bucketLeases), id, &l, "lease")
	return l, err
}

// PutLease stores l.
func (t *Tx) PutLease(l Lease) error {
	return putJSON(t.tx.Bucket(bucketLeases), l.ID, l, "lease")
}

// DeleteLease removes lease id.
func (t *Tx) DeleteLease(id string) error {
	return t.tx.Bucket(bucketLeases).Delete([]byte(id))
}

// Leases returns every lease.
func (t *Tx) Leases() ([]Lease, error) {
	var out []Lease
	err := t.tx.Bucket(bucketLeases).ForEach(func(k, v []byte) error {
		var l Lease
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("decode lease %s: %w", k, err)
		}
		out = append(out, l)
		return nil
	})
	return out, err
}
