package tencent

// One SDK call with retries and error mapping. The SDK (v1.0.162) takes no
// context, so ctx is honoured before each try and during backoff; a try in
// flight is bounded by the SDK's request timeout.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/iotburn/iotburn/registry"
	sdkerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
)

// callKind says whether a call may be repeated after an ambiguous failure.
type callKind int

const (
	idempotent callKind = iota // reads and deletes: retry anything transient
	creating                   // may have taken effect: retry only clear refusals
)

// do runs fn with exponential backoff and full jitter on throttling and
// transient errors, then maps the last error.
//
// A refusal for too many unfinished batch tasks
// (LimitExceeded.PengingOrProcessingTasksExceedLimit) is waited out on its
// own, longer policy (c.pending): the cloud answered, so the call created
// nothing and repeating it cannot create twice, even for a create; it is
// the platform saying "later", not "no". Any other failure of a create
// keeps the rule above: an outcome that is unknown is never re-sent.
func (c *Client) do(ctx context.Context, action string, kind callKind, fn func() error) error {
	var err error
	try, waits := 1, 0
	for {
		if cerr := ctx.Err(); cerr != nil {
			return errors.Join(fmt.Errorf("tencent: %s: %w", action, cerr), err)
		}
		err = fn()
		if err == nil {
			return nil
		}
		p, n := c.retry, &try
		if code(err) == codePendingTasks {
			p, n = c.pending, &waits
			*n++
		} else if !retryable(err, kind) {
			return mapError(action, err)
		}
		if *n >= p.attempts {
			return mapError(action, err)
		}
		if berr := registry.Backoff(ctx, *n, p.base, p.max); berr != nil {
			return errors.Join(fmt.Errorf("tencent: %s: %w", action, berr), mapError(action, err))
		}
		if n == &try {
			try++
		}
	}
}

// codePendingTasks is the SDK's LIMITEXCEEDED_PENGINGORPROCESSINGTASKSEXCEEDLIMIT
// (iotcloud/v20180614/errors.go: "等待和处理中的任务数过多"), spelled as the
// SDK spells it.
const codePendingTasks = "LimitExceeded.PengingOrProcessingTasksExceedLimit"

func code(err error) string {
	var e *sdkerr.TencentCloudSDKError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// retryable: throttling and server errors say the call did nothing and may be
// repeated. A network error is ambiguous for a create (the task may exist), so
// only reads and deletes repeat it.
func retryable(err error, kind callKind) bool {
	switch c := code(err); {
	case c == "RequestLimitExceeded" || strings.HasPrefix(c, "RequestLimitExceeded."),
		c == "InternalError" || strings.HasPrefix(c, "InternalError."):
		return true
	case c == "ClientError.NetworkError" || c == "ClientError.HttpStatusCodeError" || c == "ClientError.IOError":
		return kind == idempotent
	}
	return false
}

// mapError turns an SDK error into one that says what to do, wrapping the
// SDK's error (for its code) and registry.ErrRefused when the cloud answered.
func mapError(action string, err error) error {
	c := code(err)
	switch {
	case strings.HasPrefix(c, "AuthFailure"):
		return fmt.Errorf("tencent: %s: %w (%s): check %s and %s: %w: %w",
			action, ErrAuth, c, EnvSecretID, EnvSecretKey, registry.ErrRefused, err)
	case c == "InvalidParameterValue.DeviceAlreadyExist":
		return fmt.Errorf("tencent: %s: %w: %w: %w", action, registry.ErrExists, registry.ErrRefused, err)
	case c == "" || strings.HasPrefix(c, "ClientError."):
		// The SDK's own failures (network, bad JSON): the cloud may not have answered.
		return fmt.Errorf("tencent: %s: %w", action, err)
	default:
		return fmt.Errorf("tencent: %s: %w: %w", action, registry.ErrRefused, err)
	}
}
