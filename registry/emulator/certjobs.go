package emulator

// Issuing device certificates takes time (an RSA-2048 key is tens of
// milliseconds of CPU), so a batch's certificates are made in the
// background, outside e.mu, on as many goroutines as there are CPUs. A
// Tencent task or an Aliyun application of a certificate product finishes
// only once its certificates exist, so the time the signing takes shows to
// clients as a task that runs longer, as it would on a cloud doing the same
// work. Nothing of a job is journalled: until its task completes nobody has
// seen its keys, and after a restart an unfinished task's job starts again.

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
)

type certJob struct {
	done  chan struct{} // closed once certs or err is set
	certs []issuedCert  // one per name, in order
	err   error
}

func (j *certJob) ready() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// certWorkers bounds the certificates being made at once, across jobs.
type certWorkers struct {
	sem  chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func newCertWorkers() *certWorkers {
	return &certWorkers{sem: make(chan struct{}, runtime.GOMAXPROCS(0)), stop: make(chan struct{})}
}

func (w *certWorkers) close() {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
}

var errStopped = errors.New("the emulator is shutting down")

// authority returns the CA, creating it on first use (in StateDir, or in
// memory). Safe with or without e.mu held: it takes only caMu.
func (e *Emulator) authority() (*certAuthority, error) {
	e.caMu.Lock()
	defer e.caMu.Unlock()
	if e.ca != nil {
		return e.ca, nil
	}
	ca, err := loadOrCreateCA(e.cfg.StateDir, e.now())
	if err != nil {
		return nil, fmt.Errorf("emulator: certificate authority: %w", err)
	}
	e.ca = ca
	return ca, nil
}

// certJobFor returns the job issuing the certificates of names, starting it
// if there is none under key. Called with e.mu held.
func (e *Emulator) certJobFor(key, vendor, product string, names []string) *certJob {
	if j := e.jobs[key]; j != nil {
		if j.ready() && j.err != nil && !errors.Is(j.err, errStopped) {
			e.log.Warn("certificates", "job", key, "err", j.err) // e.g. crypto/rand failed; try again
		} else {
			return j
		}
	}
	j := &certJob{done: make(chan struct{})}
	e.jobs[key] = j
	w := e.workers
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(j.done)
		ca, err := e.authority()
		if err != nil {
			j.err = err
			return
		}
		now := e.now()
		certs := make([]issuedCert, len(names))
		errs := make([]error, len(names))
		var wg sync.WaitGroup
	loop:
		for i, n := range names {
			select {
			case w.sem <- struct{}{}:
			case <-w.stop:
				errs[i] = errStopped
				break loop
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-w.sem }()
				certs[i], errs[i] = ca.issueDevice(vendor, product, n, now)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			j.err = err
			return
		}
		j.certs = certs
	}()
	return j
}

// dropCertJob forgets a finished job once its task has recorded the
// certificates. Called with e.mu held.
func (e *Emulator) dropCertJob(key string) { delete(e.jobs, key) }

// issueOne makes one device's certificate outside any lock (single-device
// creation: Tencent CreateDevice, Aliyun RegisterDevice).
func (e *Emulator) issueOne(vendor, product, name string) (issuedCert, error) {
	ca, err := e.authority()
	if err != nil {
		return issuedCert{}, err
	}
	select {
	case e.workers.sem <- struct{}{}:
	case <-e.workers.stop:
		return issuedCert{}, errStopped
	}
	defer func() { <-e.workers.sem }()
	return ca.issueDevice(vendor, product, name, e.now())
}

// CACertPEM is the emulator's CA certificate (PEM): what a device trusts to
// check the TLS broker, and what every device certificate chains to. It
// creates the CA if there is none yet. The same bytes are in
// StateDir/ca.pem when the emulator has a StateDir.
func (e *Emulator) CACertPEM() ([]byte, error) {
	ca, err := e.authority()
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), ca.certPEM...), nil
}
