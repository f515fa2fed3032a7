package main

// The bodies below are the upstream main functions of each command, copied unchanged (but for
// one global flag that kubectl and kwok leave out, see dropGlobalVersionFlag), with their
// side-effect imports (log formats, metrics, time zones, client auth plugins).
// Sources: k8s.io/kubernetes/cmd/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl},
// go.etcd.io/etcd/server/v3/main.go and sigs.k8s.io/kwok/cmd/kwok/main.go.

import (
	"os"
	_ "time/tzdata" // for CronJob time zone support (kube-apiserver, kube-controller-manager)

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go's prometheus plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric registration
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kwokconfig "sigs.k8s.io/kwok/pkg/config"
	kwokcmd "sigs.k8s.io/kwok/pkg/kwok/cmd"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	kwoksignals "sigs.k8s.io/kwok/pkg/utils/signals"
)

func etcdMain() {
	etcdmain.Main(os.Args)
}

func kubeAPIServerMain() {
	os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
}

func kubeControllerManagerMain() {
	os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
}

func kubeSchedulerMain() {
	os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
}

func kubectlMain() {
	dropGlobalVersionFlag()
	logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) // nolint:errcheck
	command := kubectlcmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err)
	}
}

func kwokMain() {
	dropGlobalVersionFlag()
	flagset := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flagset.ParseErrorsAllowlist.UnknownFlags = true
	flagset.Usage = func() {}
	ctx := kwoksignals.SetupSignalContext()
	ctx, logger := kwoklog.InitFlags(ctx, flagset)
	ctx, err := kwokconfig.InitFlags(ctx, flagset)
	if err != nil {
		_, _ = os.Stderr.Write([]byte(flagset.FlagUsages()))
		logger.Error("Init config flags", "err", err)
		os.Exit(1)
	}
	command := kwokcmd.NewCommand(ctx)
	command.PersistentFlags().AddFlagSet(flagset)
	if err := command.ExecuteContext(ctx); err != nil {
		logger.Error("Execute exit", "err", err)
		os.Exit(1)
	}
}

// dropGlobalVersionFlag undoes what linking kubernetes' servers adds to kubectl and kwok:
// their verflag package registers --version on pflag.CommandLine in its init, and cobra merges
// that set into every command's flags. kubectl's and kwok's own binaries do not link it, so
// `kubectl --version` is an unknown flag and `kwok --version` is kwok's own. Every other
// global flag stays. (The servers read that flag, so only these two drop it.)
func dropGlobalVersionFlag() {
	global := pflag.NewFlagSet(os.Args[0], pflag.ExitOnError)
	pflag.CommandLine.VisitAll(func(f *pflag.Flag) {
		if f.Name != "version" {
			global.AddFlag(f)
		}
	})
	pflag.CommandLine = global
}
