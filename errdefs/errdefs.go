// Package errdefs classifies hako's errors (images, snapshots, containers)
// once, so the daemon can map them to HTTP and gRPC status codes at its edge
// without parsing messages. Errors keep their context by wrapping: test with
// errors.Is(err, errdefs.ErrNotFound).
package errdefs

import (
	"errors"
	"fmt"
)

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

// ErrNotImplemented: the request names a feature hako does not have.
var ErrNotImplemented = errors.New("not implemented")

// ErrForbidden: the request is well formed but not allowed on this object
// (removing a predefined network, one with active endpoints).
var ErrForbidden = errors.New("forbidden")

// classified is an error with a class but a message of its own, for errors
// whose wording callers know (docker's "No such container: x").
type classified struct {
	msg   string
	class error
}

func (c *classified) Error() string { return c.msg }
func (c *classified) Unwrap() error { return c.class }

func newClass(class error, format string, a ...any) error {
	return &classified{msg: fmt.Sprintf(format, a...), class: class}
}

// NotFoundf is an ErrNotFound with exactly the given message.
func NotFoundf(format string, a ...any) error { return newClass(ErrNotFound, format, a...) }

// Conflictf is an ErrConflict with exactly the given message.
func Conflictf(format string, a ...any) error { return newClass(ErrConflict, format, a...) }

// Invalidf is an ErrInvalid with exactly the given message.
func Invalidf(format string, a ...any) error { return newClass(ErrInvalid, format, a...) }

// NotImplementedf is an ErrNotImplemented with exactly the given message.
func NotImplementedf(format string, a ...any) error {
	return newClass(ErrNotImplemented, format, a...)
}

// Forbiddenf is an ErrForbidden with exactly the given message.
func Forbiddenf(format string, a ...any) error { return newClass(ErrForbidden, format, a...) }

// Unavailablef is an ErrUnavailable with exactly the given message.
func Unavailablef(format string, a ...any) error { return newClass(ErrUnavailable, format, a...) }

// IsNotFound reports an ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports an ErrConflict or ErrAlreadyExists.
func IsConflict(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrAlreadyExists)
}

// IsInvalid reports an ErrInvalid.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }
