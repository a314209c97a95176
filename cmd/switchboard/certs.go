package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchboard-dev/switchboard/internal/certs"
)

// certsCmd is `switchboard certs`: a cluster CA (made once, kept in the
// folder) and a certificate for each node named, for mutual TLS between
// members without openssl.
func certsCmd(args []string) int {
	fs := flag.NewFlagSet("switchboard certs", flag.ContinueOnError)
	dir := fs.String("dir", "certs", "folder of the CA (ca.pem, ca-key.pem) and of the node files (<node>.pem, <node>-key.pem)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: switchboard certs [--dir certs] node[=host,host…] …

Makes the cluster CA in --dir unless it is there, and for each node a certificate
valid for the hosts given (by default the node's name), usable as server and client:
  switchboard certs --dir certs node1 node2=10.0.0.2,node2.internal
Then on each node: SWITCHBOARD_CLUSTER_CA=certs/ca.pem SWITCHBOARD_NODE_CERT=certs/node1.pem
SWITCHBOARD_NODE_KEY=certs/node1-key.pem. Keep ca-key.pem off the nodes.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	for _, arg := range fs.Args() {
		name, hostList, _ := strings.Cut(arg, "=")
		hosts := []string{name}
		if hostList != "" {
			hosts = strings.Split(hostList, ",")
		}
		if name == "" || strings.ContainsAny(name, `/\`) {
			fmt.Fprintf(os.Stderr, "switchboard certs: %q: a node name is a file name, not a path\n", arg)
			return 2
		}
		certFile, keyFile := filepath.Join(*dir, name+".pem"), filepath.Join(*dir, name+"-key.pem")
		if err := certs.IssueFiles(*dir, name, hosts, certFile, keyFile); err != nil {
			fmt.Fprintln(os.Stderr, "switchboard certs:", err)
			return 1
		}
		fmt.Printf("%s: %s, %s (hosts %s)\n", name, certFile, keyFile, strings.Join(hosts, ", "))
	}
	fmt.Printf("cluster CA: %s\n", filepath.Join(*dir, "ca.pem"))
	return 0
}

// devCertHosts are the hosts make run's node certificate names: loopback,
// and the host of SWITCHBOARD_NODE_ADDR when one is set.
func devCertHosts(nodeAddr string) []string {
	hosts := []string{"127.0.0.1", "localhost"}
	if h, _, err := net.SplitHostPort(nodeAddr); err == nil && h != "" && h != "127.0.0.1" && h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
