// kube-webhook-certgen is a stand-in for jkroepke/kube-webhook-certgen (not
// served by the Go module proxy) in the end-to-end test machine. It does what
// the kube-prometheus-stack chart's admission-webhook hook Jobs ask of it:
//
//	create --host=A,B --namespace=NS --secret-name=S [--cert-name=cert --key-name=key --ca-name=ca]
//	    makes a CA and a serving certificate for the hosts and stores them in
//	    Secret NS/S (keys ca, cert, key); an existing Secret is left alone.
//	patch --webhook-name=W --namespace=NS --secret-name=S [--patch-failure-policy=Fail|Ignore]
//	      [--patch-validating=true --patch-mutating=true --ca-name=ca]
//	    sets caBundle (and failurePolicy) on every webhook of the
//	    Validating/MutatingWebhookConfiguration W.
//
// Unknown flags are refused. It talks to the API server as a pod does
// (see internal/kubeapi).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/homelab-dev/homelab/e2e/images/internal/kubeapi"
)

var version = "1.8.7"

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("logger", "kube-webhook-certgen-standin"))
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kube-webhook-certgen create|patch|version [flags]")
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	ns := fs.String("namespace", "", "namespace of the secret")
	secret := fs.String("secret-name", "", "name of the secret")
	caName := fs.String("ca-name", "ca", "secret key of the CA")
	fs.String("log-level", "info", "log level (accepted)")
	fs.String("log-format", "text", "log format (accepted)")
	fs.String("kubeconfig", "", "ignored: in-cluster only")
	var run func(context.Context, *kubeapi.Client) error
	switch cmd {
	case "version", "--version":
		fmt.Printf("kube-webhook-certgen %s (homelab e2e stand-in)\n", version)
		return
	case "create":
		host := fs.String("host", "", "comma-separated host names for the certificate")
		certName := fs.String("cert-name", "cert", "secret key of the certificate")
		keyName := fs.String("key-name", "key", "secret key of the private key")
		run = func(ctx context.Context, c *kubeapi.Client) error {
			if *host == "" {
				return fmt.Errorf("--host is required")
			}
			return create(ctx, c, *ns, *secret, strings.Split(*host, ","), *caName, *certName, *keyName)
		}
	case "patch":
		webhook := fs.String("webhook-name", "", "name of the webhook configurations")
		policy := fs.String("patch-failure-policy", "", "failurePolicy to set (Fail or Ignore)")
		pv := fs.Bool("patch-validating", true, "patch the ValidatingWebhookConfiguration")
		pm := fs.Bool("patch-mutating", true, "patch the MutatingWebhookConfiguration")
		run = func(ctx context.Context, c *kubeapi.Client) error {
			if *webhook == "" {
				return fmt.Errorf("--webhook-name is required")
			}
			return patch(ctx, c, *ns, *secret, *caName, *webhook, *policy, *pv, *pm)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q (create, patch, version)\n", cmd)
		os.Exit(2)
	}
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	if *ns == "" || *secret == "" {
		fmt.Fprintln(os.Stderr, "--namespace and --secret-name are required")
		os.Exit(2)
	}
	c, err := kubeapi.New()
	if err != nil {
		slog.Error("API server", "err", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, c); err != nil {
		slog.Error(cmd+" failed", "err", err)
		os.Exit(1)
	}
}

func secretPath(ns, name string) string {
	return "/api/v1/namespaces/" + ns + "/secrets/" + name
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func newCerts(hosts []string) (ca, cert, key []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	serial := func() *big.Int { n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62)); return n }
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{Organization: []string{"nil1"}, CommonName: "kube-webhook-certgen CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(100, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{Organization: []string{"nil2"}, CommonName: hosts[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(100, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else if h != "" {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		return nil, nil, nil, err
	}
	return pemOf("CERTIFICATE", caDER), pemOf("CERTIFICATE", leafDER), pemOf("EC PRIVATE KEY", keyDER), nil
}

func create(ctx context.Context, c *kubeapi.Client, ns, name string, hosts []string, caName, certName, keyName string) error {
	resp, err := c.Do(ctx, c.HC, http.MethodGet, secretPath(ns, name), nil, nil, "")
	if err == nil {
		resp.Body.Close()
		slog.Info("secret already exists", "secret", ns+"/"+name)
		return nil
	}
	if !kubeapi.IsStatus(err, http.StatusNotFound) {
		return err
	}
	ca, cert, key, err := newCerts(hosts)
	if err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString
	obj := map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"data":     map[string]string{caName: b64(ca), certName: b64(cert), keyName: b64(key)}}
	body, _ := json.Marshal(obj)
	resp, err = c.Do(ctx, c.HC, http.MethodPost, "/api/v1/namespaces/"+ns+"/secrets", nil, body, "application/json")
	if err != nil {
		return fmt.Errorf("create secret %s/%s: %w", ns, name, err)
	}
	resp.Body.Close()
	slog.Info("created secret", "secret", ns+"/"+name, "hosts", hosts)
	return nil
}

func patch(ctx context.Context, c *kubeapi.Client, ns, name, caName, webhook, policy string, validating, mutating bool) error {
	resp, err := c.Do(ctx, c.HC, http.MethodGet, secretPath(ns, name), nil, nil, "")
	if err != nil {
		return fmt.Errorf("read secret %s/%s: %w", ns, name, err)
	}
	var sec struct {
		Data map[string]string `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&sec)
	resp.Body.Close()
	if err != nil {
		return err
	}
	ca := sec.Data[caName]
	if ca == "" {
		return fmt.Errorf("secret %s/%s has no key %q", ns, name, caName)
	}
	if policy != "" && policy != "Fail" && policy != "Ignore" {
		return fmt.Errorf("--patch-failure-policy %q: Fail or Ignore", policy)
	}
	kinds := map[string]bool{"validatingwebhookconfigurations": validating, "mutatingwebhookconfigurations": mutating}
	for _, kind := range []string{"validatingwebhookconfigurations", "mutatingwebhookconfigurations"} {
		if !kinds[kind] {
			continue
		}
		p := "/apis/admissionregistration.k8s.io/v1/" + kind + "/" + webhook
		resp, err := c.Do(ctx, c.HC, http.MethodGet, p, nil, nil, "")
		if err != nil {
			return fmt.Errorf("get %s %s: %w", kind, webhook, err)
		}
		var cfg struct {
			Webhooks []json.RawMessage `json:"webhooks"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&cfg)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var ops []map[string]any
		for i := range cfg.Webhooks {
			ops = append(ops, map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": ca})
			if policy != "" {
				ops = append(ops, map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/failurePolicy", i), "value": policy})
			}
		}
		if len(ops) == 0 {
			slog.Info("no webhooks to patch", "kind", kind, "name", webhook)
			continue
		}
		body, _ := json.Marshal(ops)
		resp, err = c.Do(ctx, c.HC, http.MethodPatch, p, nil, body, "application/json-patch+json")
		if err != nil {
			return fmt.Errorf("patch %s %s: %w", kind, webhook, err)
		}
		resp.Body.Close()
		slog.Info("patched", "kind", kind, "name", webhook, "webhooks", len(cfg.Webhooks), "failurePolicy", policy)
	}
	return nil
}
