// Package tencent is iotburn's adapter for Tencent Cloud IoT Hub (iotcloud,
// API version 2018-06-14, the only one with batch creation), over the official
// Go SDK. It implements registry.Platform.
package tencent

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/iotburn/iotburn/registry"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"
)

// Environment variables, the vendor's own names.
const (
	EnvSecretID  = "TENCENTCLOUD_SECRET_ID"
	EnvSecretKey = "TENCENTCLOUD_SECRET_KEY"
	EnvRegion    = "TENCENTCLOUD_REGION"

	DefaultRegion = "ap-guangzhou"
)

// Config says where and as whom to talk. SecretKey is a secret: it is never
// logged or put in an error.
type Config struct {
	SecretID, SecretKey, Region string
	// Endpoint "" is the real cloud; a base URL such as "http://127.0.0.1:8443"
	// is the emulator or a private endpoint (the scheme decides HTTP or HTTPS).
	Endpoint string
}

// ConfigFromEnv reads the key pair and region from the environment.
func ConfigFromEnv(endpoint string) (Config, error) {
	c := Config{
		SecretID:  os.Getenv(EnvSecretID),
		SecretKey: os.Getenv(EnvSecretKey),
		Region:    os.Getenv(EnvRegion),
		Endpoint:  endpoint,
	}
	var missing []string
	if c.SecretID == "" {
		missing = append(missing, EnvSecretID)
	}
	if c.SecretKey == "" {
		missing = append(missing, EnvSecretKey)
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("tencent: %s not set: export the SecretId and SecretKey of a Tencent Cloud API key "+
			"(console: CAM > API keys) in the shell, e.g. `export %s=AKID...` and `read -s %s; export %s` "+
			"(never pass keys as command-line arguments)",
			strings.Join(missing, " and "), EnvSecretID, EnvSecretKey, EnvSecretKey)
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	return c, nil
}

// Client is a registry.Platform for Tencent IoT Hub. Safe for concurrent use.
type Client struct {
	api    *iot.Client
	region string
	retry  retryPolicy
	// pending waits out LimitExceeded.PengingOrProcessingTasksExceedLimit
	// (call.go): tasks take seconds, so its steps are longer and it tries
	// for minutes, not a few seconds.
	pending retryPolicy
}

var _ registry.Platform = (*Client)(nil)

// New builds a client; it does not call the cloud.
func New(cfg Config) (*Client, error) {
	if cfg.SecretID == "" || cfg.SecretKey == "" {
		return nil, fmt.Errorf("tencent: no API key: set %s and %s", EnvSecretID, EnvSecretKey)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.ReqTimeout = 30
	if cfg.Endpoint != "" {
		host, scheme, err := parseEndpoint(cfg.Endpoint)
		if err != nil {
			return nil, err
		}
		cpf.HttpProfile.Endpoint = host
		cpf.HttpProfile.Scheme = scheme
	}
	api, err := iot.NewClient(common.NewCredential(cfg.SecretID, cfg.SecretKey), cfg.Region, cpf)
	if err != nil {
		return nil, fmt.Errorf("tencent: %w", err)
	}
	// The default transport keeps 2 idle connections per host; a station runs
	// several calls at once, so keep more instead of reconnecting each time.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	api.WithHttpTransport(tr)
	return &Client{api: api, region: cfg.Region, retry: defaultRetry, pending: pendingRetry}, nil
}

// parseEndpoint turns "http://127.0.0.1:8443" into the SDK's host and scheme.
// A bare "host:port" means HTTPS, as the SDK's default.
func parseEndpoint(ep string) (host, scheme string, err error) {
	if !strings.Contains(ep, "://") {
		return ep, "HTTPS", nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", "", fmt.Errorf("tencent: endpoint %q: %w", ep, err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", "", fmt.Errorf("tencent: endpoint %q must be a base URL such as http://127.0.0.1:8443", ep)
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return u.Host, "HTTP", nil
	case "https":
		return u.Host, "HTTPS", nil
	}
	return "", "", fmt.Errorf("tencent: endpoint %q: scheme must be http or https", ep)
}

// Name is "tencent".
func (c *Client) Name() string { return registry.Tencent }

// Region is the region the client talks to.
func (c *Client) Region() string { return c.region }

// MaxBatch is CreateMultiDevice's limit: 100 names a call.
func (c *Client) MaxBatch() int { return maxBatch }

const maxBatch = 100

var nameRe = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,48}$`)

// ValidateName checks the platform's device-name rule.
func (c *Client) ValidateName(name string) error {
	if !nameRe.MatchString(name) {
		return fmt.Errorf("tencent: device name %q is invalid: a Tencent IoT Hub device name is 1 to 48 characters "+
			"of letters, digits, ':', '_' and '-' ([a-zA-Z0-9:_-]{1,48})", name)
	}
	return nil
}

// ErrAuth marks the cloud refusing the API key (it also wraps registry.ErrRefused).
var ErrAuth = errors.New("the cloud refused the API key")

// retryPolicy bounds retries of throttled and transient failures.
type retryPolicy struct {
	attempts int           // total tries
	base     time.Duration // first backoff
	max      time.Duration // cap on one backoff
}

var defaultRetry = retryPolicy{attempts: 8, base: 100 * time.Millisecond, max: 3 * time.Second}

// pendingRetry: about five minutes of waiting for tasks to finish (steps of
// 0.5 s doubling to 10 s, each jittered by half). Tencent publishes neither
// the limit nor how long tasks take; a batch of 100 is usually done in
// seconds.
var pendingRetry = retryPolicy{attempts: 40, base: 500 * time.Millisecond, max: 10 * time.Second}
