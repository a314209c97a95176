package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchboard-dev/switchboard/consumers/webhooks"
	"github.com/switchboard-dev/switchboard/internal/certs"
	"github.com/switchboard-dev/switchboard/persistence/localpg"
	"github.com/switchboard-dev/switchboard/server"
)

// dev is `make run`: a private PostgreSQL under .data/, a single node with
// the embedded search backend, and a demo account, inbox and agent, all
// printed so a person can start using it at once.
func dev(ctx context.Context, args []string) int {
	// SWITCHBOARD_DEV_DIR lets `make bench` run a fresh node beside the
	// developer's own .data/.
	dataDir := ".data"
	if d := os.Getenv("SWITCHBOARD_DEV_DIR"); d != "" {
		dataDir = d
	}
	// The settings first: a bad one, or -help, must not start PostgreSQL.
	// A database URL given (environment or flag) is used instead of a
	// server of dev's own.
	const ownDatabase = "postgres://" // stands for dev's own, started below
	early, err := server.LoadConfig("switchboard dev", args, func(k string) string {
		v := os.Getenv(k)
		if k == "SWITCHBOARD_DATABASE_URL" && v == "" {
			return ownDatabase
		}
		return v
	})
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		return 2
	}
	log, err := newLogger(early)
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		return 2
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		log.Error("create .data", "err", err)
		return 1
	}
	dbURL := early.DatabaseURL
	if dbURL == ownDatabase {
		pgLog, err := os.OpenFile(filepath.Join(dataDir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Error("open postgres log", "err", err)
			return 1
		}
		defer pgLog.Close()
		fmt.Println("==> starting PostgreSQL in " + dataDir + "/postgres (log: " + dataDir + "/postgres.log)")
		pg, err := localpg.Start(ctx, localpg.Options{Dir: filepath.Join(dataDir, "postgres"), Log: pgLog})
		if err != nil {
			log.Error("start PostgreSQL", "err", err)
			return 1
		}
		defer pg.Stop()
		if dbURL, err = pg.CreateDatabase(ctx, "switchboard"); err != nil {
			log.Error("create database", "err", err)
			return 1
		}
	} else {
		fmt.Println("==> using the database SWITCHBOARD_DATABASE_URL names (no PostgreSQL of dev's own)")
	}
	if err := os.WriteFile(filepath.Join(dataDir, "database_url"), []byte(dbURL+"\n"), 0o600); err != nil {
		log.Error("write database_url", "err", err)
		return 1
	}
	adminToken := os.Getenv("SWITCHBOARD_ADMIN_TOKEN")
	if adminToken == "" {
		if adminToken, err = readOrCreateSecret(filepath.Join(dataDir, "admin_token")); err != nil {
			log.Error("admin token", "err", err)
			return 1
		}
	}
	secretKey, err := readOrCreateSecretKey(filepath.Join(dataDir, "secret_key"))
	if err != nil {
		log.Error("webhook secret key", "err", err)
		return 1
	}
	// Remoting is TLS even on one node, with a CA of its own kept in
	// .data/cluster (SWITCHBOARD_CLUSTER_CA and friends override it).
	clusterCerts, err := certs.EnsureFiles(filepath.Join(dataDir, "cluster"), devCertHosts(os.Getenv("SWITCHBOARD_NODE_ADDR")))
	if err != nil {
		log.Error("cluster certificates", "err", err)
		return 1
	}
	getenv := func(k string) string {
		switch k {
		case "SWITCHBOARD_DATABASE_URL":
			return dbURL
		case "SWITCHBOARD_ADMIN_TOKEN":
			return adminToken
		}
		if v := os.Getenv(k); v != "" {
			return v
		}
		switch k {
		case "SWITCHBOARD_SECRET_KEY":
			return secretKey
		case "SWITCHBOARD_CLUSTER_CA", "SWITCHBOARD_NODE_CERT", "SWITCHBOARD_NODE_KEY":
			// Only when none is set: a half-set of the user's and
			// ours would be a mismatched pair.
			if os.Getenv("SWITCHBOARD_CLUSTER_CA")+os.Getenv("SWITCHBOARD_NODE_CERT")+os.Getenv("SWITCHBOARD_NODE_KEY") == "" {
				return map[string]string{"SWITCHBOARD_CLUSTER_CA": clusterCerts.CA, "SWITCHBOARD_NODE_CERT": clusterCerts.Cert, "SWITCHBOARD_NODE_KEY": clusterCerts.Key}[k]
			}
		case "SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE":
			// make run is for trying things on one machine, where the
			// receiver is usually on localhost.
			return "true"
		}
		return ""
	}
	cfg, err := server.LoadConfig("switchboard dev", args, getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		return 2
	}
	fmt.Println("==> starting the node;", tuneGC(cfg))
	n, err := server.Start(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	// The token the node took: a flag may override the variable.
	adminToken = cfg.AdminToken
	demo, err := ensureDemo(ctx, n.URL(), adminToken, filepath.Join(dataDir, "demo.json"))
	if err != nil {
		log.Error("demo data", "err", err)
	}
	fmt.Printf(`
Switchboard is running.

  URL            %s
  agent console  %s/
  admin page     %s/admin/
  admin token    %s
  database       %s

Demo (kept in .data/demo.json):
  account        %s
  api key        %s
  inbox          %s (%s)
  agent token    %s

Try:
  curl -s -X POST %s/v1/inboxes/%s/messages -H 'Authorization: Bearer %s' \
    -H 'Content-Type: application/json' -d '{"contact":{"phone":"+14155550123"},"body":"Hello!"}'

Ctrl-C stops it.
`, n.URL(), n.URL(), n.URL(), adminToken, dbURL, demo.AccountID, demo.APIKey, demo.InboxID, demo.InboxName,
		demo.AgentToken, n.URL(), demo.InboxID, demo.APIKey)
	select {
	case <-ctx.Done():
	case <-n.Failed():
		log.Error("the node can no longer serve; stopping", "err", n.Err())
	}
	fmt.Println("==> stopping")
	if err := n.Stop(context.Background()); err != nil {
		log.Error("stop", "err", err)
		return 1
	}
	return 0
}

func readOrCreateSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := "adm_" + hex.EncodeToString(b[:])
	return token, os.WriteFile(path, []byte(token+"\n"), 0o600)
}

// readOrCreateSecretKey keeps the key that seals webhook secrets in .data/,
// so webhooks created in one run still sign in the next.
func readOrCreateSecretKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	key := webhooks.NewKey()
	return key, os.WriteFile(path, []byte(key+"\n"), 0o600)
}

type demoData struct {
	AccountID  string `json:"account_id"`
	APIKey     string `json:"api_key"`
	InboxID    string `json:"inbox_id"`
	InboxName  string `json:"inbox_name"`
	AgentID    string `json:"agent_id"`
	AgentToken string `json:"agent_token"`
}

// ensureDemo creates the demo tenant through the public API on first run.
func ensureDemo(ctx context.Context, baseURL, adminToken, path string) (demoData, error) {
	var d demoData
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &d) == nil && d.APIKey != "" {
		return d, nil
	}
	var acc struct {
		Account struct{ ID string } `json:"account"`
		APIKey  string              `json:"api_key"`
	}
	if err := apiCall(ctx, baseURL+"/v1/admin/accounts", adminToken, map[string]any{"name": "Demo Co"}, &acc); err != nil {
		return d, err
	}
	var ib struct{ ID, Name string }
	if err := apiCall(ctx, baseURL+"/v1/inboxes", acc.APIKey, map[string]any{"name": "Support", "phone_number": "+14155550100"}, &ib); err != nil {
		return d, err
	}
	var ag struct {
		Agent struct{ ID string } `json:"agent"`
		Token string              `json:"token"`
	}
	if err := apiCall(ctx, baseURL+"/v1/agents", acc.APIKey, map[string]any{"name": "Ada", "email": "ada@example.com", "inbox_ids": []string{ib.ID}}, &ag); err != nil {
		return d, err
	}
	d = demoData{AccountID: acc.Account.ID, APIKey: acc.APIKey, InboxID: ib.ID, InboxName: ib.Name, AgentID: ag.Agent.ID, AgentToken: ag.Token}
	b, _ := json.MarshalIndent(d, "", "  ")
	return d, os.WriteFile(path, b, 0o600)
}

func apiCall(ctx context.Context, url, token string, body, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, res.Status, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return errors.Join(fmt.Errorf("POST %s: decode", url), err)
	}
	return nil
}
