package aliyun

// One SDK call with pacing, retries and error mapping.
//
// The cloud answers in two ways (shared/reference/aliyun.md §1): gateway
// errors (signature, key, throttling) as an HTTP 4xx/5xx, which the SDK turns
// into *errors.ServerError; IoT refusals as HTTP 200 with Success:false, which
// the SDK hands back as a normal response. Both become *APIError here.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	sdkerr "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	iot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
	"github.com/iotburn/iotburn/registry"
)

// APIError is an answer of the cloud that refused a call.
type APIError struct {
	Action     string
	Code       string // e.g. "iot.device.AlreadyExistedDeviceName", "Throttling.User"
	Message    string
	RequestID  string
	HTTPStatus int // 200 for IoT refusals (Success:false)
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s answered %s (HTTP %d, RequestId %s): %s", e.Action, e.Code, e.HTTPStatus, e.RequestID, e.Message)
}

// answer is the common part of every Iot response.
type answer struct {
	success            bool
	code, msg, request string
}

func answerOf(success bool, code, msg, request string) answer {
	return answer{success: success, code: code, msg: msg, request: request}
}

// prepare points a request at the configured endpoint: Domain and Scheme on
// the request come before the SDK's endpoint resolution (sdk/client.go), and
// the SDK sends to scheme://Domain, so "127.0.0.1:8443" works.
func (c *Client) prepare(r *requests.RpcRequest) {
	r.AcceptFormat = "JSON" // the cloud's default is XML
	if c.domain != "" {
		r.Domain = c.domain
		r.Scheme = c.scheme
	}
}

// do runs fn (one SDK call on a pooled client) with pacing, and with
// exponential backoff and full jitter on throttling and transient errors,
// then maps the last error. Every Iot action this client uses is safe to
// repeat: a repeated name check only leaves an unused application, a repeated
// registration of the same ApplyId cannot create a name twice (StartBatch
// checks what happened), and the rest read or delete.
func (c *Client) do(ctx context.Context, action string, fn func(*iot.Client) (answer, error)) error {
	var err error
	for try := 1; ; try++ {
		if cerr := ctx.Err(); cerr != nil {
			return errors.Join(fmt.Errorf("aliyun: %s: %w", action, cerr), err)
		}
		if perr := c.pace.wait(ctx, action); perr != nil {
			return errors.Join(fmt.Errorf("aliyun: %s: %w", action, perr), err)
		}
		cn, aerr := c.acquire(ctx)
		if aerr != nil {
			return errors.Join(fmt.Errorf("aliyun: %s: %w", action, aerr), err)
		}
		cn.rt.ctx = ctx
		var ans answer
		ans, err = fn(cn.api)
		c.release(cn)
		err = toAPIError(action, ans, err)
		if err == nil {
			return nil
		}
		if try >= c.retry.attempts || !retryable(ctx, err) {
			return mapError(action, err)
		}
		if berr := registry.Backoff(ctx, try, c.retry.base, c.retry.max); berr != nil {
			return errors.Join(fmt.Errorf("aliyun: %s: %w", action, berr), mapError(action, err))
		}
	}
}

// toAPIError turns a gateway error or a Success:false answer into *APIError.
func toAPIError(action string, ans answer, err error) error {
	var se *sdkerr.ServerError
	switch {
	case errors.As(err, &se):
		msg := se.Message()
		if se.ErrorCode() == "" { // not the gateway's JSON: keep the status, not a page of HTML
			msg = fmt.Sprintf("unexpected answer: %.200s", msg)
		}
		return &APIError{Action: action, Code: se.ErrorCode(), Message: msg, RequestID: se.RequestId(), HTTPStatus: se.HttpStatus()}
	case err != nil:
		return err
	case !ans.success:
		code := ans.code
		if code == "" {
			code = "Unknown"
		}
		return &APIError{Action: action, Code: code, Message: ans.msg, RequestID: ans.request, HTTPStatus: http.StatusOK}
	}
	return nil
}

func code(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// retryable: throttling, server errors and a nonce collision say the call did
// nothing and may be repeated; a network failure may be repeated too (see do).
// The SDK's own failures to decode an answer are not: the next answer would
// be the same.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var e *APIError
	if errors.As(err, &e) {
		c := e.Code
		return strings.HasPrefix(c, "Throttling") || c == "ServiceUnavailable" || c == "InternalError" ||
			c == "iot.system.SystemException" || c == "SignatureNonceUsed" || e.HTTPStatus >= 500
	}
	var ce *sdkerr.ClientError
	if errors.As(err, &ce) {
		return ce.ErrorCode() == sdkerr.TimeoutErrorCode
	}
	return true // transport: connection refused/reset, timeout
}

// mapError turns a failure into one that says what to do, wrapping the
// *APIError (for its code) and registry.ErrRefused when the cloud answered.
func mapError(action string, err error) error {
	c := code(err)
	switch {
	case c == "SignatureDoesNotMatch" || strings.HasPrefix(c, "InvalidAccessKeyId") || c == "IncompleteSignature" ||
		c == "iot.common.RamActionPermissionDeny" || c == "iot.common.AuthActionPermissionDeny" || strings.HasPrefix(c, "Forbidden"):
		return fmt.Errorf("aliyun: %s: %w (%s): check %s and %s: %w: %w",
			action, ErrAuth, c, EnvAccessKeyID, EnvAccessKeySecret, registry.ErrRefused, err)
	case c == "InvalidTimeStamp.Expired":
		return fmt.Errorf("aliyun: %s: the cloud says this machine's clock is wrong: sync it (NTP) and retry: %w: %w",
			action, registry.ErrRefused, err)
	case c == "iot.device.AlreadyExistedDeviceName":
		return fmt.Errorf("aliyun: %s: %w: %w: %w", action, registry.ErrExists, registry.ErrRefused, err)
	case c == "":
		// Not an answer of the cloud (network, undecodable reply): it may or may not have acted.
		return fmt.Errorf("aliyun: %s: %w", action, err)
	default:
		return fmt.Errorf("aliyun: %s: %w: %w", action, registry.ErrRefused, err)
	}
}

// documentedQPS are the per-account QPS limits of the actions used
// (shared/reference/aliyun.md §2; the iot-20180120 comments for the rest).
var documentedQPS = map[string]float64{
	"BatchCheckDeviceNames":          10,
	"BatchRegisterDeviceWithApplyId": 10,
	"QueryBatchRegisterDeviceStatus": 30,
	"QueryPageByApplyId":             50,
	"QueryDeviceDetail":              50,
	"QueryDevice":                    50,
	"DeleteDevice":                   50,
	// "单个阿里云账号调用该接口的每秒请求数(QPS)最大限制为10" (docs api-omdh29, 140723).
	"QueryDeviceCert":       10,
	"QueryCertUrlByApplyId": 10,
	// "每个阿里云账号最多可发起500次/秒的查询" (GetThingTopo, doc 69770).
	"GetThingTopo": 500,
}

// pacer keeps the client under the cloud's per-action QPS, so a batch of
// 10,000 pages its results at the limit instead of bouncing off it with
// Throttling.User and backoff. It runs at 90% of the limit with a burst of
// half of it: the cloud's bucket and ours refill on different clocks, and
// other stations may share the account (throttling is still retried).
type pacer struct {
	mu      sync.Mutex
	qps     map[string]float64
	buckets map[string]*paceBucket
}

type paceBucket struct {
	tokens float64
	last   time.Time
}

func newPacer(qps map[string]float64) *pacer {
	return &pacer{qps: qps, buckets: map[string]*paceBucket{}}
}

func (p *pacer) wait(ctx context.Context, action string) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	limit := p.qps[action]
	if limit <= 0 {
		p.mu.Unlock()
		return nil
	}
	rate, burst := 0.9*limit, max(1, limit/2)
	now := time.Now()
	b := p.buckets[action]
	if b == nil {
		b = &paceBucket{tokens: burst, last: now}
		p.buckets[action] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	b.tokens-- // reserve: a negative balance is a wait
	wait := time.Duration(0)
	if b.tokens < 0 {
		wait = time.Duration(-b.tokens / rate * float64(time.Second))
	}
	p.mu.Unlock()
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
