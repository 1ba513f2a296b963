// Package aliyun is iotburn's adapter for Alibaba Cloud IoT Platform (product
// Iot, API version 2018-01-20, "unique certificate per device"), over the
// official Go SDK (github.com/aliyun/alibaba-cloud-sdk-go, services/iot). It
// implements registry.Platform.
//
// A batch is one application (ApplyId): BatchCheckDeviceNames, wait for
// CHECK_SUCCESS, BatchRegisterDeviceWithApplyId, wait for CREATE_SUCCESS, then
// QueryPageByApplyId 50 devices a page. The ApplyId is the task id the ledger
// journals; see StartBatch for why that is safe across crashes.
package aliyun

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	iot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
	"github.com/iotburn/iotburn/registry"
)

// Environment variables, the vendor's own names.
const (
	EnvAccessKeyID     = "ALIBABA_CLOUD_ACCESS_KEY_ID"
	EnvAccessKeySecret = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
	EnvRegion          = "ALIBABA_CLOUD_REGION_ID"

	DefaultRegion = "cn-shanghai"
)

// Config says where and as whom to talk. AccessKeySecret is a secret: it is
// never logged or put in an error.
type Config struct {
	AccessKeyID, AccessKeySecret, Region string
	// Endpoint "" is the cloud, found by region (iot.<region>.aliyuncs.com,
	// over HTTPS); a base URL such as "http://127.0.0.1:8443" is the emulator
	// or a private endpoint (the scheme decides HTTP or HTTPS).
	Endpoint string
}

// ConfigFromEnv reads the key pair and region from the environment.
func ConfigFromEnv(endpoint string) (Config, error) {
	c := Config{
		AccessKeyID:     os.Getenv(EnvAccessKeyID),
		AccessKeySecret: os.Getenv(EnvAccessKeySecret),
		Region:          os.Getenv(EnvRegion),
		Endpoint:        endpoint,
	}
	var missing []string
	if c.AccessKeyID == "" {
		missing = append(missing, EnvAccessKeyID)
	}
	if c.AccessKeySecret == "" {
		missing = append(missing, EnvAccessKeySecret)
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("aliyun: %s not set: export the AccessKey ID and secret of an Alibaba Cloud RAM user "+
			"allowed to use IoT Platform (console: RAM > AccessKey) in the shell, e.g. `export %s=LTAI...` and "+
			"`read -s %s; export %s` (never pass keys as command-line arguments)",
			strings.Join(missing, " and "), EnvAccessKeyID, EnvAccessKeySecret, EnvAccessKeySecret)
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	return c, nil
}

// Client is a registry.Platform for Alibaba Cloud IoT Platform. Safe for
// concurrent use.
//
// The SDK's client is not: each call rewrites its http.Client's Timeout (and,
// for an *http.Transport, the transport's dialer). So the Client keeps a small
// pool of SDK clients, one per call in flight, each with its own transport
// wrapper (which also carries the call's context, since the SDK takes none,
// and counts the HTTP requests sent).
type Client struct {
	pool   chan *conn
	region string
	domain string // host[:port] to send to; "" = the SDK's endpoint for the region
	scheme string // "HTTP" or "HTTPS" with domain
	retry  retryPolicy
	pace   *pacer
	calls  atomic.Int64
	auth   sync.Map // ProductKey → registry.AuthType, from QueryProduct
	// certWait bounds one device's wait for its certificate (QueryDeviceCert
	// Status 0 "生成中"); certPoll is the first pause between its polls.
	certWait, certPoll time.Duration
}

var _ registry.Platform = (*Client)(nil)

type conn struct {
	api *iot.Client
	rt  *ctxTransport
}

// ctxTransport hands each request to the shared transport under the context
// of the call using this pooled SDK client, so cancelling ctx aborts a call
// in flight.
type ctxTransport struct {
	base  http.RoundTripper
	ctx   context.Context // set by Client.do around each call; the conn is used by one call at a time
	calls *atomic.Int64
}

func (t *ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.calls.Add(1)
	if t.ctx != nil {
		req = req.WithContext(t.ctx)
	}
	return t.base.RoundTrip(req)
}

// poolSize bounds the calls in flight at once; provision.Create runs 4
// workers, and the vendor's QPS limits make more pointless.
const poolSize = 8

// New builds a client; it does not call the cloud.
func New(cfg Config) (*Client, error) {
	if cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" {
		return nil, fmt.Errorf("aliyun: no AccessKey: set %s and %s", EnvAccessKeyID, EnvAccessKeySecret)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	c := &Client{pool: make(chan *conn, poolSize), region: cfg.Region, scheme: "HTTPS", retry: defaultRetry, pace: newPacer(documentedQPS),
		certWait: 2 * time.Minute, certPoll: 100 * time.Millisecond}
	if cfg.Endpoint != "" {
		host, scheme, err := parseEndpoint(cfg.Endpoint)
		if err != nil {
			return nil, err
		}
		c.domain, c.scheme = host, scheme
	}
	// The default transport keeps 2 idle connections per host; keep one per
	// pooled client instead of reconnecting each time.
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = poolSize
	for range poolSize {
		rt := &ctxTransport{base: base, calls: &c.calls}
		sc := sdk.NewConfig()
		sc.AutoRetry = false // Client.do retries, context-aware and only what is safe
		sc.Scheme = c.scheme
		// Transport, not HttpTransport: the SDK leaves a RoundTripper that is
		// not an *http.Transport alone instead of rewriting its dialer per call.
		sc.Transport = rt
		api, err := iot.NewClientWithOptions(cfg.Region, sc, credentials.NewAccessKeyCredential(cfg.AccessKeyID, cfg.AccessKeySecret))
		if err != nil {
			return nil, fmt.Errorf("aliyun: %w", err)
		}
		api.SetReadTimeout(30 * time.Second)
		api.SetConnectTimeout(5 * time.Second)
		c.pool <- &conn{api: api, rt: rt}
	}
	return c, nil
}

// parseEndpoint turns "http://127.0.0.1:8443" into the SDK's domain and
// scheme. The SDK builds the URL as scheme://Domain, so a host:port works as
// the domain. A bare "host:port" means HTTPS, as the cloud.
func parseEndpoint(ep string) (host, scheme string, err error) {
	if !strings.Contains(ep, "://") {
		return ep, "HTTPS", nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", "", fmt.Errorf("aliyun: endpoint %q: %w", ep, err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", "", fmt.Errorf("aliyun: endpoint %q must be a base URL such as http://127.0.0.1:8443", ep)
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return u.Host, "HTTP", nil
	case "https":
		return u.Host, "HTTPS", nil
	}
	return "", "", fmt.Errorf("aliyun: endpoint %q: scheme must be http or https", ep)
}

// Name is "aliyun".
func (c *Client) Name() string { return registry.Aliyun }

// Region is the region the client talks to.
func (c *Client) Region() string { return c.region }

// MaxBatch is an application's limit: 10,000 names.
func (c *Client) MaxBatch() int { return maxBatch }

const maxBatch = 10000

// Calls is the number of HTTP requests the client has sent (retries
// included), for benchmarks and `iotburn bench`.
func (c *Client) Calls() int64 { return c.calls.Load() }

var nameRe = regexp.MustCompile(`^[A-Za-z0-9_@.:-]{4,32}$`)

// ValidateName checks the platform's device-name rule.
func (c *Client) ValidateName(name string) error {
	if !nameRe.MatchString(name) {
		return fmt.Errorf("aliyun: device name %q is invalid: an Alibaba Cloud IoT device name is 4 to 32 characters "+
			"of letters, digits and - _ @ . : ([A-Za-z0-9_@.:-]{4,32})", name)
	}
	return nil
}

// ErrAuth marks the cloud refusing the AccessKey (it also wraps registry.ErrRefused).
var ErrAuth = errors.New("the cloud refused the AccessKey")

// retryPolicy bounds retries of throttled and transient failures.
type retryPolicy struct {
	attempts int           // total tries
	base     time.Duration // first backoff
	max      time.Duration // cap on one backoff
}

var defaultRetry = retryPolicy{attempts: 8, base: 100 * time.Millisecond, max: 3 * time.Second}

func (c *Client) acquire(ctx context.Context) (*conn, error) {
	select {
	case cn := <-c.pool:
		return cn, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Client) release(cn *conn) {
	cn.rt.ctx = nil
	c.pool <- cn
}
