package aliyun

// X.509 products (QueryProduct AuthType "x509"): each device's certificate,
// its private key and its CertSN come from QueryDeviceCert (doc api-omdh29;
// QueryDeviceCertResponse.DeviceCertInfo in services/iot), one device a call
// at 10 QPS, polled while its Status is 0 "生成中". The batch download
// (QueryCertUrlByApplyId's CertUrl, doc 140723) is not used: the format of
// what it serves is not published.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	iot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"

	"github.com/iotburn/iotburn/registry"
)

// QueryDeviceCert's Status: "0:生成中 1:生成失败 2:生成成功" (doc api-omdh29).
const (
	certGenerating = 0
	certFailed     = 1
	certReady      = 2
)

// maxX509Batch: an X.509 product's application takes at most 1,000 names
// (shared/reference/aliyun.md §2 Limits, doc 69482).
const maxX509Batch = 1000

// ErrCertFailed: the platform reports it could not make the device's
// certificate (Status 1 "生成失败").
var ErrCertFailed = errors.New("the platform failed to generate the device certificate")

// deviceCert is a device's certificate, key and CertSN once ready, polling
// QueryDeviceCert while the certificate is being made (at most c.certWait).
func (c *Client) deviceCert(ctx context.Context, product, name string) (iot.DeviceCertInfo, error) {
	deadline := time.Now().Add(c.certWait)
	wait := c.certPoll
	for {
		var info iot.DeviceCertInfo
		err := c.do(ctx, "QueryDeviceCert", func(api *iot.Client) (answer, error) {
			req := iot.CreateQueryDeviceCertRequest()
			c.prepare(req.RpcRequest)
			req.ProductKey, req.DeviceName = product, name
			resp, err := api.QueryDeviceCert(req)
			if err != nil {
				return answer{}, err
			}
			info = resp.DeviceCertInfo
			return answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId), nil
		})
		if err != nil {
			if code(err) == codeNotExisted {
				return info, fmt.Errorf("aliyun: device %s/%s: %w: %w", product, name, registry.ErrNotFound, err)
			}
			return info, err
		}
		switch info.Status {
		case certReady:
			if info.Certificate == "" || info.PrivateKey == "" {
				return info, fmt.Errorf("aliyun: QueryDeviceCert for %s/%s answered Status 2 without a certificate or key", product, name)
			}
			return info, nil
		case certFailed:
			return info, fmt.Errorf("aliyun: %s/%s: %w (QueryDeviceCert Status 1): %w", product, name, ErrCertFailed, registry.ErrRefused)
		case certGenerating:
		default:
			return info, fmt.Errorf("aliyun: QueryDeviceCert for %s/%s answered an unknown Status %d", product, name, info.Status)
		}
		if time.Now().Add(wait).After(deadline) {
			return info, fmt.Errorf("aliyun: the certificate of %s/%s was still being made (Status 0) after %v", product, name, c.certWait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return info, fmt.Errorf("aliyun: waiting for the certificate of %s/%s: %w", product, name, ctx.Err())
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// certWorkers is how many devices' certificates are fetched at once: the
// pacer holds them all under QueryDeviceCert's 10 QPS; a few in flight hide
// each call's latency.
const certWorkers = 4

// addCerts fills in the certificates of the created devices of an X.509
// application (results without Err), in place. A device whose certificate
// could not be had is an error of the whole: the devices exist, and the
// next BatchResults asks again (QueryDeviceCert answers on every call).
func (c *Client) addCerts(ctx context.Context, product string, results []registry.DeviceResult) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range certWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				info, err := c.deviceCert(ctx, product, results[i].DeviceName)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					continue
				}
				results[i].DeviceCert, results[i].DevicePrivateKey = info.Certificate, info.PrivateKey
			}
		}()
	}
feed:
	for i := range results {
		if results[i].Err != "" {
			continue
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

var _ registry.PrivateKeyFetcher = (*Client)(nil)

// DevicePrivateKey is an X.509 device's private key (PEM), from
// QueryDeviceCert, which answers it on every call.
func (c *Client) DevicePrivateKey(ctx context.Context, product, name string) (string, error) {
	info, err := c.deviceCert(ctx, product, name)
	if err != nil {
		return "", err
	}
	return info.PrivateKey, nil
}

// MaxBatchFor is the most names one StartBatch takes for the product: 1,000
// for an X.509 product, 10,000 for the others (doc 69482). MaxBatch is the
// platform's largest.
func (c *Client) MaxBatchFor(ctx context.Context, product string) (int, error) {
	auth, err := c.productAuth(ctx, product)
	if err != nil {
		return 0, err
	}
	if auth == registry.AuthCert {
		return maxX509Batch, nil
	}
	return maxBatch, nil
}
