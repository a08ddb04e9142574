// CoreDNS built from the Go module proxy with only the plugins the platform's cluster DNS uses
// (the Corefile in hubkit_testing/clusternet.py; `log` for debugging): the upstream coremain, nothing else.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The plugin chain order is upstream's (plugin.cfg); the unregistered ones are simply absent.
var _ = dnsserver.Directives

func main() {
	coremain.Run()
}
