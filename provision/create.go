package provision

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
)

// CreateOptions describes one `iotburn create` run.
type CreateOptions struct {
	Platform registry.Platform
	Ledger   *ledger.Ledger
	Product  string
	Names    []string
	// Parallel is how many platform tasks are waited on at once (default 3).
	// Tasks finish roughly in the order they were started, so a few workers
	// taking them in order keep the status polls (which count against the
	// platform's rate limit) to about one per task.
	Parallel int
	// Progress, if set, is told how many names are settled out of the total.
	Progress func(done, total int)
	// Poll is the first interval between task-status polls; it backs off to 2 s.
	Poll time.Duration
}

// CreateResult counts what a create run did.
type CreateResult struct {
	Requested int      // names asked for
	Skipped   int      // already in the ledger (or in a journalled request) before this run
	Healed    int      // credentials recovered from requests a crashed run left open
	Created   int      // new credentials stored by this run
	Failed    []string // "name: reason" for devices the platform refused
	Calls     int      // batch tasks started
}

// Create makes the named devices on the platform and stores their secrets in
// the ledger, so that nothing is lost and nothing is created twice:
//
//  1. requests a previous run left open are healed first (their task is asked
//     for its devices; the secrets land in the ledger);
//  2. names the ledger already knows are skipped;
//  3. the rest go out in chunks of the platform's batch limit, each chunk
//     journalled before it is sent and its task id recorded as soon as known.
func Create(ctx context.Context, o CreateOptions) (CreateResult, error) {
	res := CreateResult{Requested: len(o.Names)}
	if o.Parallel <= 0 {
		o.Parallel = 3
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	platform := o.Platform.Name()

	healed, err := heal(ctx, o)
	res.Healed = healed
	if err != nil {
		return res, fmt.Errorf("healing the requests of an earlier run: %w", err)
	}

	known, err := o.Ledger.KnownNames(platform, o.Product)
	if err != nil {
		return res, err
	}
	var todo []string
	for _, n := range o.Names {
		if known[n] {
			res.Skipped++
			continue
		}
		todo = append(todo, n)
	}
	total := len(todo)
	if o.Progress != nil {
		o.Progress(0, total)
	}
	if total == 0 {
		return res, nil
	}

	// Start every chunk's task first (cheap, journalled), then wait for them in
	// parallel: the platform works on all of them at once.
	var (
		mu    sync.Mutex
		done  int
		first error
	)
	max := o.Platform.MaxBatch()
	// Buffered for every chunk: starting tasks never waits for finishing them.
	jobs := make(chan ledger.Request, (len(todo)+max-1)/max)
	var wg sync.WaitGroup
	for i := 0; i < o.Parallel; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for req := range jobs {
				added, failed, err := finish(ctx, o, req, nil)
				mu.Lock()
				res.Created += added
				res.Failed = append(res.Failed, failed...)
				done += len(req.Names)
				if err != nil && first == nil {
					first = err
				}
				if o.Progress != nil {
					o.Progress(done, total)
				}
				mu.Unlock()
			}
		}()
	}
	var startErr error
	for start := 0; start < len(todo) && startErr == nil; start += max {
		chunk := todo[start:min(start+max, len(todo))]
		req, err := o.Ledger.Journal(platform, o.Product, chunk)
		if err != nil {
			startErr = err
			break
		}
		taskID, err := o.Platform.StartBatch(ctx, o.Product, chunk)
		if err != nil {
			// A refusal created nothing: close the journal entry so the next run
			// does not skip these names. Anything else (a timeout) stays open,
			// and the next run looks the names up before it creates them again.
			if errors.Is(err, registry.ErrRefused) {
				if _, derr := o.Ledger.Complete(req.ID, nil); derr != nil {
					err = errors.Join(err, derr)
				}
			}
			startErr = err
			break
		}
		if err := o.Ledger.SetTask(req.ID, taskID); err != nil {
			startErr = err
			break
		}
		req.TaskID = taskID
		mu.Lock()
		res.Calls++
		mu.Unlock()
		select {
		case jobs <- req:
		case <-ctx.Done():
			startErr = ctx.Err()
		}
	}
	close(jobs)
	wg.Wait()
	if startErr != nil {
		return res, startErr
	}
	return res, first
}

// finish waits for one request's task and stores its devices.
// extra are credentials found by lookup that belong to the same journal entry.
func finish(ctx context.Context, o CreateOptions, req ledger.Request, extra []registry.Credential) (added int, failed []string, err error) {
	if err := waitTask(ctx, o, req.TaskID); err != nil {
		return 0, nil, err
	}
	results, err := o.Platform.BatchResults(ctx, o.Product, req.TaskID)
	if err != nil {
		return 0, nil, err
	}
	creds := make([]registry.Credential, 0, len(results)+len(extra))
	creds = append(creds, extra...)
	for _, r := range results {
		reason := r.Err
		switch {
		case reason != "":
		case r.DeviceSecret != "":
			creds = append(creds, o.credential(r.DeviceName, r.DeviceSecret))
			continue
		// A certificate device: both halves or nothing, since a
		// certificate without its key cannot log in (and Tencent hands the
		// key out once: the client fetched it already if it could).
		case r.DeviceCert != "" && r.DevicePrivateKey != "":
			creds = append(creds, o.certCredential(r.DeviceName, r.DeviceCert, r.DevicePrivateKey))
			continue
		case r.DeviceCert != "":
			reason = "the platform returned a certificate without its private key"
		default:
			reason = "the platform returned no secret"
		}
		failed = append(failed, r.DeviceName+": "+reason)
	}
	added, err = o.Ledger.Complete(req.ID, creds)
	return added, failed, err
}

// waitTask polls the task until it is done: at once first (a task picked up
// late is usually done already), then backing off.
func waitTask(ctx context.Context, o CreateOptions, taskID string) error {
	wait := o.Poll
	for {
		ok, err := o.Platform.BatchDone(ctx, o.Product, taskID)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(wait*3/2, 2*time.Second)
	}
}

// heal finishes the requests a crashed run left open. A request with a task id
// is simply finished. One without had its call in flight when the run died:
// the platform may or may not have created its devices (or may still be
// creating them), so each name is looked up; the ones that exist are stored
// with the secret the lookup returns, the rest are sent again under the same
// journal entry. If the platform says some of those exist after all, a task of
// the lost call is still running: wait for it and look them up again.
func heal(ctx context.Context, o CreateOptions) (int, error) {
	open, err := o.Ledger.OpenRequests(o.Platform.Name(), o.Product)
	if err != nil {
		return 0, err
	}
	healed := 0
	for _, req := range open {
		if req.TaskID == "" {
			creds, missing, err := lookUp(ctx, o, req.Names)
			if err != nil {
				return healed, err
			}
			if len(missing) > 0 {
				taskID, err := o.Platform.StartBatch(ctx, o.Product, missing)
				switch {
				case errors.Is(err, registry.ErrExists):
					more, err := awaitDevices(ctx, o, missing)
					if err != nil {
						return healed, err
					}
					creds = append(creds, more...)
				case err != nil:
					return healed, err
				default:
					if err := o.Ledger.SetTask(req.ID, taskID); err != nil {
						return healed, err
					}
					req.TaskID = taskID
					added, _, err := finish(ctx, o, req, creds)
					healed += added
					if err != nil {
						return healed, err
					}
					continue
				}
			}
			added, err := o.Ledger.Complete(req.ID, creds)
			healed += added
			if err != nil {
				return healed, err
			}
			continue
		}
		added, _, err := finish(ctx, o, req, nil)
		healed += added
		if err != nil {
			return healed, err
		}
	}
	return healed, nil
}

// lookUp asks the platform for each name; it returns the credentials of the
// devices that exist and the names that do not.
func lookUp(ctx context.Context, o CreateOptions, names []string) (creds []registry.Credential, missing []string, err error) {
	for _, name := range names {
		d, err := o.Platform.Device(ctx, o.Product, name)
		if errors.Is(err, registry.ErrNotFound) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if d.DeviceSecret == "" && d.DeviceCert != "" {
			c, err := o.lookUpKey(ctx, d)
			if err != nil {
				return nil, nil, err
			}
			creds = append(creds, c)
			continue
		}
		if d.DeviceSecret == "" {
			return nil, nil, fmt.Errorf("device %s exists on the platform but its secret could not be read back: delete it on the platform and run create again", name)
		}
		creds = append(creds, o.credential(name, d.DeviceSecret))
	}
	return creds, missing, nil
}

// awaitDevices waits (up to two minutes) for devices that a lost task is
// still creating, and returns their credentials.
func awaitDevices(ctx context.Context, o CreateOptions, names []string) ([]registry.Credential, error) {
	deadline := time.Now().Add(2 * time.Minute)
	var found []registry.Credential
	for wait := o.Poll; ; wait = min(wait*3/2, 2*time.Second) {
		creds, missing, err := lookUp(ctx, o, names)
		if err != nil {
			return nil, err
		}
		found = append(found, creds...)
		if len(missing) == 0 {
			return found, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d device(s) (first %s) are reported as existing but cannot be found: check them on the platform console, then run create again", len(missing), missing[0])
		}
		names = missing
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// lookUpKey completes a certificate device found by lookup with its private
// key: from the lookup itself where the platform hands it out again (Aliyun
// QueryDeviceCert), else from the platform's one-time key fetch (Tencent
// DescribeDeviceClientKey). A key the platform no longer gives is the end:
// nothing iotburn holds can log that device in.
func (o CreateOptions) lookUpKey(ctx context.Context, d registry.Device) (registry.Credential, error) {
	key := d.DevicePrivateKey
	if key == "" {
		f, ok := o.Platform.(registry.PrivateKeyFetcher)
		if !ok {
			return registry.Credential{}, fmt.Errorf("device %s exists on the platform with a certificate, but %s cannot hand out its private key: "+
				"delete it on the platform and run create again", d.DeviceName, o.Platform.Name())
		}
		var err error
		key, err = f.DevicePrivateKey(ctx, o.Product, d.DeviceName)
		if errors.Is(err, registry.ErrKeyGone) {
			return registry.Credential{}, fmt.Errorf("device %s exists on the platform, but its private key was handed out already and not stored here "+
				"(the answer was lost): delete the device on the platform (or reset its certificate) and run create again: %w", d.DeviceName, err)
		}
		if err != nil {
			return registry.Credential{}, err
		}
	}
	return o.certCredential(d.DeviceName, d.DeviceCert, key), nil
}

func (o CreateOptions) certCredential(name, cert, key string) registry.Credential {
	c := o.credential(name, "")
	c.DeviceCert, c.DevicePrivateKey = cert, key
	return c
}

func (o CreateOptions) credential(name, secret string) registry.Credential {
	return registry.Credential{Platform: o.Platform.Name(), ProductID: o.Product, DeviceName: name, DeviceSecret: secret, Region: o.Platform.Region()}
}
