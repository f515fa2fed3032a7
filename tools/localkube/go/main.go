// Command localkube is the whole local control plane in one multi-call binary, the way k3s
// ships it: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok.
// Linking them together compiles client-go, apimachinery, grpc and etcd's client once instead
// of once per binary and links once instead of six times. Each command is its upstream main
// body, unchanged; it is chosen by the name the binary is called by (a symlink named after
// the command) or, when called as localkube, by the first argument.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// commands maps each command name to its upstream main function (see commands.go).
var commands = map[string]func(){
	"etcd":                    etcdMain,
	"kube-apiserver":          kubeAPIServerMain,
	"kube-controller-manager": kubeControllerManagerMain,
	"kube-scheduler":          kubeSchedulerMain,
	"kubectl":                 kubectlMain,
	"kwok":                    kwokMain,
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := commands[name]; !ok && len(os.Args) > 1 {
		// `localkube kube-apiserver --flags`: the command as first argument; it then sees
		// itself as argv[0], as it would when installed on its own.
		name = os.Args[1]
		os.Args = os.Args[1:]
	}
	run, ok := commands[name]
	if !ok {
		names := make([]string, 0, len(commands))
		for n := range commands {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: localkube COMMAND [ARGS...]  (or a symlink named COMMAND)\ncommands: %s\n",
			strings.Join(names, ", "))
		os.Exit(2)
	}
	run()
}
