package devauth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Expected values are copied by hand from shared/reference/aliyun.md.

// §3a: the HTTPS registration signature vector (iotkit example values).
func TestAliyunRegisterSign(t *testing.T) {
	got, err := AliyunRegisterSign("hmacsha256", "a1X2bEnP82z", "7jluWm1zql7bt8qK", "example1", "8Ygb7ULYh53B6OA")
	if err != nil || got != "37c9d9c4dcab7fc75d65d25547a4e11080e59dd82f3255aafc90d83498480e88" {
		t.Fatalf("sign %s %v", got, err)
	}
	form, _ := url.ParseQuery(AliyunRegisterForm("a1X2bEnP82z", "7jluWm1zql7bt8qK", "example1", "8Ygb7ULYh53B6OA"))
	if form.Get("sign") != got || form.Get("signMethod") != "hmacsha256" || form.Get("random") != "8Ygb7ULYh53B6OA" ||
		form.Get("productKey") != "a1X2bEnP82z" || form.Get("deviceName") != "example1" {
		t.Fatalf("form %v", form)
	}
	cid, user, pass := AliyunDynRegMQTT("a1X2bEnP82z", "7jluWm1zql7bt8qK", "example1", "8Ygb7ULYh53B6OA", true)
	if cid != "example1.a1X2bEnP82z|random=8Ygb7ULYh53B6OA,authType=regnwl,securemode=2,signmethod=hmacsha256|" ||
		user != "example1&a1X2bEnP82z" || pass != got {
		t.Fatalf("MQTT registration CONNECT %s %s %s", cid, user, pass)
	}
}

// §4: the doc-formula vectors and the iotkit example triple.
func TestAliyunMQTTVectors(t *testing.T) {
	for method, want := range map[string]string{
		"hmacsha1":   "fafd82a3d602b37fb0fa8b7892f24a477f851a14",
		"hmacsha256": "6074a46a91b1ebb2cc4ea42790ad0e80202c9843859fc292e57c4eb19fad9e57",
		"hmacmd5":    "14b198324fe55e1d3c88f2e705e201ee",
	} {
		cid, user, pass, err := AliyunMQTTWith("12345", "pk", "device", "secret", "789", method, 2)
		if err != nil || pass != want {
			t.Fatalf("%s: %s %v", method, pass, err)
		}
		if cid != "12345|securemode=2,signmethod="+method+",timestamp=789|" || user != "device&pk" {
			t.Fatalf("%s: %s %s", method, cid, user)
		}
	}
	pass, _ := AliyunMQTTPassword("hmacsha256", "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe", "a1X2bEnP82z.example1", "a1X2bEnP82z", "example1", "2524608000000")
	if strings.ToUpper(pass) != "B8CE8F1D706DD3C61D13BFD9855DEF7E321B785084CA9C93F0169A2B46785DD2" {
		t.Fatalf("iotkit password %s", pass)
	}
	cid, user, pass := AliyunMQTT("a1X2bEnP82z", "example1", "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe", time.UnixMilli(2524608000000))
	if cid != "a1X2bEnP82z.example1|securemode=2,signmethod=hmacsha256,timestamp=2524608000000|" || user != "example1&a1X2bEnP82z" ||
		strings.ToUpper(pass) != "B8CE8F1D706DD3C61D13BFD9855DEF7E321B785084CA9C93F0169A2B46785DD2" {
		t.Fatalf("AliyunMQTT %s %s %s", cid, user, pass)
	}
	cid, user, pass = AliyunMQTTToken("pk", "dn", "CID123", "tok")
	if cid != "CID123|authType=connwl,securemode=-2,_ss=1,ext=3|" || user != "dn&pk" || pass != "tok" {
		t.Fatalf("token CONNECT %s %s %s", cid, user, pass)
	}
}

func TestAliyunRegisterHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f, _ := url.ParseQuery(string(b))
		if r.URL.Path != "/auth/register/device" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.NotFound(w, r)
			return
		}
		want, _ := AliyunRegisterSign("hmacsha256", f.Get("productKey"), "PS0123456789abcd", f.Get("deviceName"), f.Get("random"))
		if f.Get("sign") != want || len(f.Get("random")) != 15 {
			io.WriteString(w, `{"code":6292,"message":"sign check failed"}`)
			return
		}
		io.WriteString(w, `{"code":200,"data":{"productKey":"pk","deviceName":"dn","deviceSecret":"DS"},"message":"success"}`)
	}))
	defer srv.Close()
	ds, err := AliyunRegister(context.Background(), srv.URL, "pk", "PS0123456789abcd", "dn")
	if err != nil || ds != "DS" {
		t.Fatalf("%q %v", ds, err)
	}
	_, err = AliyunRegister(context.Background(), srv.URL, "pk", "wrong-secret", "dn")
	if e, ok := Refused(err); !ok || e.Code != "6292" || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("refusal %v", err)
	}
}
