package sim

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"

	"github.com/iotburn/iotburn/registry/emulator"
)

// A QCloud_AT module on a gateway, told by its host (as a gateway's MCU does
// on first connect) to log in, bind its sub-devices and bring them online:
// every step goes over the emulator's real broker, the bindings land in the
// platform's topology, and the firmware answers as its command reference
// and the real module's transcript show.
func TestTencentGatewayCommands(t *testing.T) {
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

	h := &fakeHost{mqttAddr: addr}
	fw := newTencentAT(h).(*tencentAT)
	t.Cleanup(fw.gw.disconnect)
	step := func(cmd, want string) {
		t.Helper()
		before := len(h.sent())
		fw.receive([]byte(cmd + "\r\n"))
		if got := h.sent()[before:]; got != want {
			t.Fatalf("%s:\n got %q\nwant %q", cmd, got, want)
		}
	}
	step("ATE0", "ATE0\r\n"+okR)
	step(`AT+TCGWBIND=0,"SUBPRODUC1","sub1","`+psk1+`"`, cme208) // not connected yet
	step(`AT+TCMQTTSTATE?`, "+TCMQTTSTATE:0\r\n"+okR)
	step(`AT+TCDEVINFOSET=1,"GWPRODUCT1","gw1","`+gwPSK+`"`, okR+"+TCDEVINFOSET:OK\r\n")
	step(`AT+TCSUBDEVINFOSET=0,"SUBPRODUC1","sub1","`+psk1+`"`, okR+"+TCSUBDEVINFOSET:OK\r\n")
	step(`AT+TCMQTTCONN=1,5000,240,1,1`, okR+"+TCMQTTCONN:OK\r\n")
	step(`AT+TCMQTTSTATE?`, "+TCMQTTSTATE:1\r\n"+okR)
	step(`AT+TCGWBIND=0,"SUBPRODUC1","sub1"`, okR+"+TCGWBIND:OK\r\n") // the stored secret
	step(`AT+TCGWBIND=0,"SUBPRODUC1","sub1"`, okR+"+TCGWBIND:OK\r\n") // "重复绑定也返回成功"
	step(`AT+TCGWBIND=0,"SUBPRODUC1","sub2","`+psk1+`"`, okR+"+TCGWBIND:FAIL,803\r\n")
	step(`AT+TCGWBIND=0,"SUBPRODUC1","nosuch","`+psk1+`"`, okR+"+TCGWBIND:FAIL,802\r\n")
	step(`AT+TCGWBIND=0,"SUBPRODUC1","sub3"`, cme204) // no secret given or stored
	step(`AT+TCGWBIND=0,"SUBPRODUC1","sub2","`+psk2+`"`, okR+"+TCGWBIND:OK\r\n")
	step(`AT+TCGWBIND?`, "+TCGWBIND: SUBPRODUC1,sub1\r\n+TCGWBIND: SUBPRODUC1,sub2\r\n"+okR)
	if got := emu.TencentTopology("GWPRODUCT1", "gw1"); strings.Join(got, " ") != "SUBPRODUC1/sub1 SUBPRODUC1/sub2" {
		t.Fatalf("the platform's topology: %v", got)
	}
	step(`AT+TCGWONLINE=0,"SUBPRODUC1","sub1"`, okR+"+TCGWONLINE:OK\r\n")
	step(`AT+TCGWONLINE?`, "+TCGWONLINE: SUBPRODUC1,sub1\r\n"+okR)
	online := func(name string) uint64 {
		r := iot.NewDescribeDeviceRequest()
		pid := "SUBPRODUC1"
		r.ProductID, r.DeviceName = &pid, &name
		resp, err := c.DescribeDevice(r)
		if err != nil {
			t.Fatal(err)
		}
		return *resp.Response.Online
	}
	if online("sub1") != 1 {
		t.Fatal("sub1 is not online on the platform")
	}
	step(`AT+TCGWONLINE=1,"SUBPRODUC1","sub1"`, okR+"+TCGWONLINE:OK\r\n")
	step(`AT+TCGWBIND=1,"SUBPRODUC1","sub2"`, okR+"+TCGWBIND:OK\r\n")
	step(`AT+TCGWBIND=1,"SUBPRODUC1","sub2"`, okR+"+TCGWBIND:OK\r\n") // "解绑未绑定的设备也返回成功"
	step(`AT+TCGWONLINE=0,"SUBPRODUC1","sub2"`, okR+"+TCGWONLINE:FAIL,-1\r\n")
	if got := emu.TencentTopology("GWPRODUCT1", "gw1"); len(got) != 1 {
		t.Fatalf("after the unbind: %v", got)
	}
	step(`AT+TCSUBDEVINFOSET?`, "+TCSUBDEVINFOSET:\"SUBPRODUC1\",\"sub1\","+strconv.Itoa(bcc(psk1))+",\"ap-guangzhou\"\r\n"+okR)
	step(`AT+TCMQTTDISCONN`, okR)
	step(`AT+TCGWONLINE=0,"SUBPRODUC1","sub1"`, cme208)
}
