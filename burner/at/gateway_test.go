package at_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"

	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry/emulator"
)

// The driver tells a simulated gateway module, over a real pty, to store its
// sub-devices, log in, bind them and bring them online; the emulator's
// topology and the official SDK see the result; a sub-device the gateway
// holds a wrong secret for is refused with the cloud's 803.
func TestGatewayCommands(t *testing.T) {
	cfg := emulator.Config{GatewayProducts: []string{"GWPRODUCT1"}, SubDeviceProducts: []string{"SUBPRODUC1"}, TaskDelay: -1, RateLimit: -1}
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	addr, err := emu.StartMQTT("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); emu.Close() })
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint, cpf.HttpProfile.Scheme = strings.TrimPrefix(srv.URL, "http://"), "HTTP"
	c, err := iot.NewClient(common.NewCredential(cfg.SecretID, cfg.SecretKey), "ap-guangzhou", cpf)
	if err != nil {
		t.Fatal(err)
	}
	create := func(pid, name string) string {
		r := iot.NewCreateDeviceRequest()
		r.ProductId, r.DeviceName = &pid, &name
		resp, err := c.CreateDevice(r)
		if err != nil {
			t.Fatal(err)
		}
		return *resp.Response.DevicePsk
	}
	gwPSK, psk1, psk2 := create("GWPRODUCT1", "gw1"), create("SUBPRODUC1", "sub1"), create("SUBPRODUC1", "sub2")

	f, err := sim.Start(sim.Options{Dir: t.TempDir(), Count: 1, Baud: sim.Unpaced, MQTT: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	d := open(t, f.Boards()[0], 0)
	d.Timeout = 5 * time.Second
	cx := ctx(t)
	if err := d.Hello(cx); err != nil {
		t.Fatal(err)
	}
	if err := d.GatewayBind(cx, "SUBPRODUC1", "sub1"); !errors.Is(err, at.ErrRefused) {
		t.Fatalf("bind before the login: %v, want a refusal", err)
	}
	if err := d.RunScript(cx, []byte(`AT+TCDEVINFOSET=1,"GWPRODUCT1","gw1","`+gwPSK+`"`)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ name, secret string }{{"sub1", psk1}, {"sub2", psk1 /* wrong */}} {
		if err := d.SetSubDevice(cx, "SUBPRODUC1", s.name, s.secret); err != nil {
			t.Fatalf("SetSubDevice %s: %v", s.name, err)
		}
	}
	if err := d.MQTTConnect(cx); err != nil {
		t.Fatal(err)
	}
	if err := d.GatewayBind(cx, "SUBPRODUC1", "sub1"); err != nil {
		t.Fatal(err)
	}
	var re *at.RefusalError
	if err := d.GatewayBind(cx, "SUBPRODUC1", "sub2"); !errors.As(err, &re) || re.Code != "803" {
		t.Fatalf("bind with a wrong secret: %v, want code 803", err)
	}
	if err := d.SetSubDevice(cx, "SUBPRODUC1", "sub2", psk2); err != nil {
		t.Fatal(err)
	}
	if err := d.GatewayBind(cx, "SUBPRODUC1", "sub2"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sub1", "sub2"} {
		if err := d.GatewayOnline(cx, "SUBPRODUC1", n); err != nil {
			t.Fatalf("online %s: %v", n, err)
		}
	}
	bound, err := d.GatewayBound(cx)
	if err != nil || strings.Join(bound, " ") != "SUBPRODUC1/sub1 SUBPRODUC1/sub2" {
		t.Fatalf("GatewayBound: %v %v", bound, err)
	}
	if got := emu.TencentTopology("GWPRODUCT1", "gw1"); len(got) != 2 {
		t.Fatalf("the platform's topology: %v", got)
	}
	r := iot.NewDescribeDeviceRequest()
	pid, name := "SUBPRODUC1", "sub2"
	r.ProductID, r.DeviceName = &pid, &name
	resp, err := c.DescribeDevice(r)
	if err != nil || *resp.Response.Online != 1 {
		t.Fatalf("sub2 on the platform: %v", err)
	}
}
