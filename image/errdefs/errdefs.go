// Package errdefs classifies the errors of the image and snapshot packages
// once, so the daemon can map them to HTTP and gRPC status codes at its edge
// without parsing messages. Errors keep their context by wrapping: test with
// errors.Is(err, errdefs.ErrNotFound).
package errdefs

import "errors"

var (
	// ErrNotFound: the named image, blob, snapshot or lease does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the target of a create already exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the object is in use (an image used by a snapshot, a
	// snapshot with children) or the request contradicts the store's state.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the caller's input (reference, archive, layer, media type)
	// is malformed or unsupported.
	ErrInvalid = errors.New("invalid argument")
	// ErrDataLoss: stored or received content does not match its digest.
	ErrDataLoss = errors.New("content digest mismatch")
	// ErrUnavailable: a remote (registry) failed or could not be reached.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnauthorized: a remote refused our credentials.
	ErrUnauthorized = errors.New("unauthorized")
)
