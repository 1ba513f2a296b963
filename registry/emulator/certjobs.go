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
	done  chan struct{} // closed once every certificate is made, or one failed
	certs []issuedCert  // one per name, in order

	mu      sync.Mutex
	left    int
	err     error
	settled bool
}

func (j *certJob) ready() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// finish records certificate i (or its failure); the last one closes done.
func (j *certJob) finish(i int, c issuedCert, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.settled {
		return
	}
	if err != nil {
		j.err, j.settled = err, true
		close(j.done)
		return
	}
	j.certs[i] = c
	if j.left--; j.left == 0 {
		j.settled = true
		close(j.done)
	}
}

// failed is the job's error once it is ready.
func (j *certJob) failed() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// certWork is one certificate to make.
type certWork struct {
	job                   *certJob
	i                     int
	vendor, product, name string
}

// certWorkers make certificates first come, first served, on as many
// goroutines as there are CPUs: the oldest task's certificates first, so
// tasks finish in the order they were made (and free their places among the
// unfinished ones), instead of all of them late together.
type certWorkers struct {
	e       *Emulator
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []certWork
	started bool
	stopped bool
	wg      sync.WaitGroup
}

func newCertWorkers(e *Emulator) *certWorkers {
	w := &certWorkers{e: e}
	w.cond = sync.NewCond(&w.mu)
	return w
}

func (w *certWorkers) add(items []certWork) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		for _, it := range items {
			it.job.finish(it.i, issuedCert{}, errStopped)
		}
		return
	}
	w.queue = append(w.queue, items...)
	if !w.started {
		w.started = true
		for range runtime.GOMAXPROCS(0) {
			w.wg.Add(1)
			go w.run()
		}
	}
	w.cond.Broadcast()
}

func (w *certWorkers) run() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.stopped {
			w.cond.Wait()
		}
		if w.stopped {
			w.mu.Unlock()
			return
		}
		it := w.queue[0]
		w.queue = w.queue[1:]
		w.mu.Unlock()
		if it.job.ready() { // an earlier certificate of its job failed
			continue
		}
		ca, err := w.e.authority()
		var c issuedCert
		if err == nil {
			c, err = ca.issueDevice(it.vendor, it.product, it.name, w.e.now())
		}
		it.job.finish(it.i, c, err)
	}
}

func (w *certWorkers) close() {
	w.mu.Lock()
	w.stopped = true
	pending := w.queue
	w.queue = nil
	w.cond.Broadcast()
	w.mu.Unlock()
	for _, it := range pending {
		it.job.finish(it.i, issuedCert{}, errStopped)
	}
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

// certJobFor returns the job issuing the certificates of names, queueing it
// if there is none under key (or the last one failed). Called with e.mu held.
func (e *Emulator) certJobFor(key, vendor, product string, names []string) *certJob {
	if j := e.jobs[key]; j != nil {
		err := j.failed()
		if !j.ready() || err == nil || errors.Is(err, errStopped) {
			return j
		}
		e.log.Warn("certificates", "job", key, "err", err) // e.g. crypto/rand failed; try again
	}
	j := &certJob{done: make(chan struct{}), certs: make([]issuedCert, len(names)), left: len(names)}
	e.jobs[key] = j
	if len(names) == 0 {
		j.settled = true
		close(j.done)
		return j
	}
	items := make([]certWork, len(names))
	for i, n := range names {
		items[i] = certWork{job: j, i: i, vendor: vendor, product: product, name: n}
	}
	e.workers.add(items)
	return j
}

// dropCertJob forgets a finished job once its task has recorded the
// certificates. Called with e.mu held.
func (e *Emulator) dropCertJob(key string) { delete(e.jobs, key) }

// issueOne makes one device's certificate at once, outside any lock and
// ahead of the queue (single-device creation: Tencent CreateDevice, Aliyun
// RegisterDevice, whose caller waits for it).
func (e *Emulator) issueOne(vendor, product, name string) (issuedCert, error) {
	ca, err := e.authority()
	if err != nil {
		return issuedCert{}, err
	}
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
