package cri

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hako-project/hako/errdefs"
)

// toStatus maps an error's errdefs class to the gRPC code kubelet and
// critest expect; the message is kept whole.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, errdefs.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, errdefs.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, errdefs.ErrAlreadyExists):
		code = codes.AlreadyExists
	case errors.Is(err, errdefs.ErrConflict):
		code = codes.FailedPrecondition
	case errors.Is(err, errdefs.ErrNotImplemented):
		code = codes.Unimplemented
	case errors.Is(err, errdefs.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, errdefs.ErrUnauthorized):
		code = codes.PermissionDenied
	case errors.Is(err, errdefs.ErrDataLoss):
		code = codes.DataLoss
	}
	return status.Error(code, err.Error())
}

// alreadyExistsf is an error of class ErrAlreadyExists with its own
// message.
func alreadyExistsf(format string, a ...any) error {
	return &classed{msg: fmt.Sprintf(format, a...), class: errdefs.ErrAlreadyExists}
}

type classed struct {
	msg   string
	class error
}

func (c *classed) Error() string { return c.msg }
func (c *classed) Unwrap() error { return c.class }
