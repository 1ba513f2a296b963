package aliyun

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	iot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
	"github.com/iotburn/iotburn/registry"
)

// Application statuses (QueryBatchRegisterDeviceStatus.Data.Status, doc 69483).
const (
	stCheck         = "CHECK"
	stCheckSuccess  = "CHECK_SUCCESS"
	stCheckFailed   = "CHECK_FAILED"
	stCreate        = "CREATE"
	stCreateSuccess = "CREATE_SUCCESS"
	stCreateFailed  = "CREATE_FAILED"
)

// codeWrongApply is the cloud's (sic) "the device application information is
// not correct": the application is not in the state the call needs.
const codeWrongApply = "iot.device.IncorrentDeviceApplyInfo"

// StartBatch creates the named devices as one application and returns its
// ApplyId: BatchCheckDeviceNames, wait for the check's verdict, then
// BatchRegisterDeviceWithApplyId. It returns only once the registration is
// known to have been accepted, so the ApplyId the ledger journals always
// names an application that is creating (or has created) exactly these names.
//
// Crash and failure safety (the ledger journals the names before the call and
// the ApplyId as soon as StartBatch returns):
//   - the check is refused, or fails: nothing was created; the error wraps
//     registry.ErrRefused (and registry.ErrExists when names are taken: names
//     that pass ValidateName and are unique can only fail the check that way);
//   - the registration is refused: the application's status is read before
//     believing it, because an earlier try of ours whose answer was lost may
//     have been accepted (a repeat of an accepted registration is refused):
//     a status of CREATE* means it was, and the ApplyId is returned; only
//     CHECK_SUCCESS, i.e. certainly not registered, gives ErrRefused;
//   - anything else (network down, status unreadable) returns an error that
//     does not wrap ErrRefused: the ledger keeps the request open without an
//     ApplyId, and the next run looks each name up before it creates it again.
//     A checked but unregistered application left behind is harmless: it
//     reserves nothing and creates nothing.
//
// Should an ApplyId ever be journalled for an application that was checked
// but not registered, BatchDone registers it: the names are the journal's own.
func (c *Client) StartBatch(ctx context.Context, product string, names []string) (string, error) {
	if len(names) == 0 || len(names) > maxBatch {
		return "", fmt.Errorf("aliyun: an application takes 1 to %d names, not %d: %w", maxBatch, len(names), registry.ErrRefused)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := c.ValidateName(n); err != nil {
			return "", fmt.Errorf("%w: %w", err, registry.ErrRefused)
		}
		if seen[n] {
			return "", fmt.Errorf("aliyun: device name %q is listed twice: %w", n, registry.ErrRefused)
		}
		seen[n] = true
	}

	var applyID int64
	var invalid []string
	err := c.do(ctx, "BatchCheckDeviceNames", func(api *iot.Client) (answer, error) {
		req := iot.CreateBatchCheckDeviceNamesRequest()
		c.prepare(req.RpcRequest)
		req.ProductKey = product
		list := append([]string(nil), names...)
		req.DeviceName = &list
		resp, err := api.BatchCheckDeviceNames(req)
		if err != nil {
			return answer{}, err
		}
		applyID = resp.Data.ApplyId
		invalid = append(append(resp.Data.InvalidDeviceNameList.InvalidDeviceName[:0:0],
			resp.Data.InvalidDeviceNameList.InvalidDeviceName...), resp.Data.RepeatedDeviceNameList.RepeatDevieNameList...)
		return answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId), nil
	})
	if err != nil {
		return "", err
	}
	if len(invalid) > 0 {
		return "", fmt.Errorf("aliyun: BatchCheckDeviceNames refused %d name(s) (first %q): %w", len(invalid), invalid[0], registry.ErrRefused)
	}
	if applyID <= 0 {
		return "", fmt.Errorf("aliyun: BatchCheckDeviceNames answered without an ApplyId")
	}
	id := strconv.FormatInt(applyID, 10)

	st, err := c.waitCheck(ctx, product, applyID)
	if err != nil {
		return "", err
	}
	if st.Status == stCheckFailed {
		return "", checkFailed(applyID, st)
	}
	if err := c.register(ctx, product, applyID); err != nil {
		return "", err
	}
	return id, nil
}

// checkFailed explains a CHECK_FAILED application. The names passed
// ValidateName and are unique, so the check failed them for existing (or
// being created by another application): registry.ErrExists.
func checkFailed(applyID int64, st iot.DataInQueryBatchRegisterDeviceStatus) error {
	var which []string
	for _, d := range st.InvalidDetailList.InvalidDetailList {
		which = append(which, fmt.Sprintf("%s (%s)", d.DeviceName, d.ErrorMsg))
	}
	if len(which) == 0 {
		which = st.InvalidList.Name
	}
	more := ""
	if len(which) > 5 {
		more = fmt.Sprintf(" and %d more", len(which)-5)
		which = which[:5]
	}
	return fmt.Errorf("aliyun: application %d failed its name check: %s%s: %w: %w",
		applyID, strings.Join(which, ", "), more, registry.ErrExists, registry.ErrRefused)
}

// waitCheck polls the application until its check has a verdict.
func (c *Client) waitCheck(ctx context.Context, product string, applyID int64) (iot.DataInQueryBatchRegisterDeviceStatus, error) {
	wait := 50 * time.Millisecond
	for {
		st, err := c.status(ctx, product, applyID)
		if err != nil || st.Status != stCheck {
			return st, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return st, fmt.Errorf("aliyun: waiting for the name check of application %d: %w", applyID, ctx.Err())
		}
		wait = min(wait*3/2, 2*time.Second)
	}
}

// register calls BatchRegisterDeviceWithApplyId and makes sure of the outcome
// (see StartBatch): a refusal counts only if the application is still
// unregistered.
func (c *Client) register(ctx context.Context, product string, applyID int64) error {
	err := c.do(ctx, "BatchRegisterDeviceWithApplyId", func(api *iot.Client) (answer, error) {
		req := iot.CreateBatchRegisterDeviceWithApplyIdRequest()
		c.prepare(req.RpcRequest)
		req.ProductKey, req.ApplyId = product, requests.NewInteger64(applyID)
		resp, err := api.BatchRegisterDeviceWithApplyId(req)
		if err != nil {
			return answer{}, err
		}
		return answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId), nil
	})
	if err == nil || code(err) == "" {
		return err // accepted, or unknown: not ErrRefused either way
	}
	st, serr := c.status(ctx, product, applyID)
	if serr != nil {
		// The refusal cannot be confirmed; an earlier try may have landed.
		return fmt.Errorf("aliyun: application %d: registration refused, and its status cannot be read to confirm it (%v): %w",
			applyID, serr, errorsWithoutRefusal(err))
	}
	switch st.Status {
	case stCreate, stCreateSuccess, stCreateFailed:
		return nil // an earlier try of ours was accepted
	case stCheckSuccess, stCheckFailed:
		return err
	default:
		return fmt.Errorf("aliyun: application %d is %s after its registration was refused: %w", applyID, st.Status, errorsWithoutRefusal(err))
	}
}

// errorsWithoutRefusal keeps err's text but not its registry.ErrRefused (or
// ErrExists) marks, for outcomes that are not certain.
func errorsWithoutRefusal(err error) error {
	return fmt.Errorf("%s", err.Error())
}

func (c *Client) status(ctx context.Context, product string, applyID int64) (iot.DataInQueryBatchRegisterDeviceStatus, error) {
	var data iot.DataInQueryBatchRegisterDeviceStatus
	err := c.do(ctx, "QueryBatchRegisterDeviceStatus", func(api *iot.Client) (answer, error) {
		req := iot.CreateQueryBatchRegisterDeviceStatusRequest()
		c.prepare(req.RpcRequest)
		req.ProductKey, req.ApplyId = product, requests.NewInteger64(applyID)
		resp, err := api.QueryBatchRegisterDeviceStatus(req)
		if err != nil {
			return answer{}, err
		}
		data = resp.Data
		ans := answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId)
		if ans.success && data.Status == "" {
			return ans, fmt.Errorf("QueryBatchRegisterDeviceStatus answered without a Status")
		}
		return ans, nil
	})
	return data, err
}

func parseApplyID(taskID string) (int64, error) {
	id, err := strconv.ParseInt(taskID, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("aliyun: %q is not an ApplyId: %w", taskID, registry.ErrRefused)
	}
	return id, nil
}

// BatchDone reads the application's status: finished on CREATE_SUCCESS and on
// CREATE_FAILED (the devices that were created have secrets to store;
// BatchResults reports the others one by one). CHECK_FAILED is an error. A
// checked but unregistered application is registered here (see StartBatch).
func (c *Client) BatchDone(ctx context.Context, product, taskID string) (bool, error) {
	applyID, err := parseApplyID(taskID)
	if err != nil {
		return false, err
	}
	st, err := c.status(ctx, product, applyID)
	if err != nil {
		return false, err
	}
	switch st.Status {
	case stCreateSuccess, stCreateFailed:
		return true, nil
	case stCheckFailed:
		return false, checkFailed(applyID, st)
	case stCheckSuccess:
		if err := c.register(ctx, product, applyID); err != nil && code(err) != codeWrongApply {
			return false, err
		}
		return false, nil
	case stCheck, stCreate:
		return false, nil
	default:
		return false, fmt.Errorf("aliyun: application %d has an unknown status %q", applyID, st.Status)
	}
}

// applyPage is QueryPageByApplyId's largest page.
const applyPage = 50

// BatchResults pages QueryPageByApplyId (whose list is at the top level of
// the answer, not under Data), for an X.509 product asks each created
// device's certificate and key with QueryDeviceCert, and, for a
// CREATE_FAILED application, adds the names the platform did not create,
// with its reason.
func (c *Client) BatchResults(ctx context.Context, product, taskID string) ([]registry.DeviceResult, error) {
	applyID, err := parseApplyID(taskID)
	if err != nil {
		return nil, err
	}
	var out []registry.DeviceResult
	for page := 1; ; page++ {
		var resp *iot.QueryPageByApplyIdResponse
		err := c.do(ctx, "QueryPageByApplyId", func(api *iot.Client) (answer, error) {
			req := iot.CreateQueryPageByApplyIdRequest()
			c.prepare(req.RpcRequest)
			req.ApplyId, req.PageSize, req.CurrentPage = requests.NewInteger64(applyID), requests.NewInteger(applyPage), requests.NewInteger(page)
			var err error
			if resp, err = api.QueryPageByApplyId(req); err != nil {
				return answer{}, err
			}
			return answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId), nil
		})
		if err != nil {
			return nil, err
		}
		for _, d := range resp.ApplyDeviceList.ApplyDeviceInfo {
			out = append(out, registry.DeviceResult{DeviceName: d.DeviceName, DeviceSecret: d.DeviceSecret})
		}
		if len(resp.ApplyDeviceList.ApplyDeviceInfo) == 0 || len(out) >= resp.Total {
			if len(out) < resp.Total {
				return out, fmt.Errorf("aliyun: QueryPageByApplyId: application %d lists %d devices but returned %d", applyID, resp.Total, len(out))
			}
			break
		}
	}
	// An X.509 device's page has no DeviceSecret: its certificate and key
	// come from QueryDeviceCert, one device a call. (Devices with secrets,
	// a secret product's, cost no QueryProduct.)
	if missingSecret(out) {
		if auth, err := c.productAuth(ctx, product); err != nil {
			return nil, err
		} else if auth == registry.AuthCert {
			if err := c.addCerts(ctx, product, out); err != nil {
				return nil, err
			}
		}
	}
	st, err := c.status(ctx, product, applyID)
	if err != nil {
		return nil, err
	}
	if st.Status == stCreateFailed {
		reason := map[string]string{}
		for _, d := range st.InvalidDetailList.InvalidDetailList {
			reason[d.DeviceName] = d.ErrorMsg
		}
		for _, n := range st.InvalidList.Name {
			r := reason[n]
			if r == "" {
				r = "the platform did not create it (CREATE_FAILED)"
			}
			out = append(out, registry.DeviceResult{DeviceName: n, Err: r})
		}
	}
	return out, nil
}

// missingSecret: some created device came without a DeviceSecret.
func missingSecret(results []registry.DeviceResult) bool {
	for _, r := range results {
		if r.Err == "" && r.DeviceSecret == "" {
			return true
		}
	}
	return false
}
