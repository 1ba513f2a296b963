package tencent

import (
	"context"
	"fmt"

	"github.com/iotburn/iotburn/registry"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"
)

// StartBatch calls CreateMultiDevice. Names are checked here first so a bad
// one costs no call.
func (c *Client) StartBatch(ctx context.Context, product string, names []string) (string, error) {
	if len(names) == 0 || len(names) > maxBatch {
		return "", fmt.Errorf("tencent: CreateMultiDevice takes 1 to %d names, not %d: %w", maxBatch, len(names), registry.ErrRefused)
	}
	for _, n := range names {
		if err := c.ValidateName(n); err != nil {
			return "", fmt.Errorf("%w: %w", err, registry.ErrRefused)
		}
	}
	req := iot.NewCreateMultiDeviceRequest()
	req.ProductId = &product
	req.DeviceNames = make([]*string, len(names))
	for i := range names {
		req.DeviceNames[i] = &names[i]
	}
	var taskID string
	err := c.do(ctx, "CreateMultiDevice", creating, func() error {
		resp, err := c.api.CreateMultiDevice(req)
		if err != nil {
			return err
		}
		if resp.Response == nil || resp.Response.TaskId == nil || *resp.Response.TaskId == "" {
			return fmt.Errorf("CreateMultiDevice answered without a TaskId")
		}
		taskID = *resp.Response.TaskId
		return nil
	})
	return taskID, err
}

// taskDone is DescribeMultiDevTask's "2 代表任务已完成".
const taskDone = 2

// BatchDone calls DescribeMultiDevTask.
func (c *Client) BatchDone(ctx context.Context, product, taskID string) (bool, error) {
	req := iot.NewDescribeMultiDevTaskRequest()
	req.ProductId, req.TaskId = &product, &taskID
	var status uint64
	err := c.do(ctx, "DescribeMultiDevTask", idempotent, func() error {
		resp, err := c.api.DescribeMultiDevTask(req)
		if err != nil {
			return err
		}
		if resp.Response == nil || resp.Response.TaskStatus == nil {
			return fmt.Errorf("DescribeMultiDevTask answered without a TaskStatus")
		}
		status = *resp.Response.TaskStatus
		return nil
	})
	return status == taskDone, err
}

// multiPage is DescribeMultiDevices' page size: its model documents no range,
// and a task holds at most 100 devices, so one page of 100 is a whole task.
const multiPage = 100

// BatchResults pages DescribeMultiDevices.
func (c *Client) BatchResults(ctx context.Context, product, taskID string) ([]registry.DeviceResult, error) {
	var out []registry.DeviceResult
	for {
		req := iot.NewDescribeMultiDevicesRequest()
		offset, limit := uint64(len(out)), uint64(multiPage)
		req.ProductId, req.TaskId, req.Offset, req.Limit = &product, &taskID, &offset, &limit
		var resp *iot.DescribeMultiDevicesResponse
		err := c.do(ctx, "DescribeMultiDevices", idempotent, func() (err error) {
			resp, err = c.api.DescribeMultiDevices(req)
			if err == nil && resp.Response == nil {
				err = fmt.Errorf("DescribeMultiDevices answered without a Response")
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, d := range resp.Response.DevicesInfo {
			// A certificate product's devices come with DeviceCert and
			// DevicePrivateKey ("采用非对称加密时返回该参数"), a key product's with
			// DevicePsk (MultiDevicesInfo, models.go).
			r := registry.DeviceResult{DeviceName: str(d.DeviceName), DeviceSecret: str(d.DevicePsk),
				DeviceCert: str(d.DeviceCert), DevicePrivateKey: str(d.DevicePrivateKey)}
			if res := u64(d.Result); res != 0 {
				r.DeviceSecret, r.DeviceCert, r.DevicePrivateKey = "", "", ""
				r.Err = str(d.ErrMsg)
				if r.Err == "" {
					r.Err = fmt.Sprintf("the platform reported result code %d", res)
				}
			}
			out = append(out, r)
		}
		total := u64(resp.Response.TotalDevNum)
		if len(resp.Response.DevicesInfo) == 0 || uint64(len(out)) >= total {
			if uint64(len(out)) < total {
				return out, fmt.Errorf("tencent: DescribeMultiDevices: task %s lists %d devices but returned %d", taskID, total, len(out))
			}
			return out, nil
		}
	}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func u64(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
