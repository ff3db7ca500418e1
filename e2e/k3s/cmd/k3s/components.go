package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as the upstream mains
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as the upstream mains
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as the upstream mains
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's auth plugins
	_ "time/tzdata"                             // CronJob time zones, as kube-controller-manager's main
)

// components are the upstream Kubernetes commands this binary runs, each as
// its upstream main does. `k3s server` starts each in its own child process
// (this binary re-executed with the component's name), so that their global
// state (flags, metrics registries, klog) never meets.
var components = map[string]func(args []string) int{
	"kube-apiserver": func(args []string) int {
		c := apiserver.NewAPIServerCommand()
		c.SetArgs(args)
		return cli.Run(c)
	},
	"kube-controller-manager": func(args []string) int {
		c := controllermanager.NewControllerManagerCommand()
		c.SetArgs(args)
		return cli.Run(c)
	},
	"kube-scheduler": func(args []string) int {
		c := scheduler.NewSchedulerCommand()
		c.SetArgs(args)
		return cli.Run(c)
	},
	"kubelet": func(args []string) int {
		c := kubelet.NewKubeletCommand(context.Background())
		c.SetArgs(args)
		return cli.Run(c)
	},
	"kube-proxy": func(args []string) int {
		c := proxy.NewProxyCommand()
		c.SetArgs(args)
		return cli.Run(c)
	},
}

// runKubectl is kubectl; like k3s's, it uses k3s's kubeconfig unless told
// otherwise.
func runKubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" {
		os.Setenv("KUBECONFIG", kubeconfigPath)
	}
	logs.GlogSetter(kubectlcmd.GetLogVerbosity(append([]string{"kubectl"}, args...))) // nolint:errcheck
	os.Args = append([]string{"kubectl"}, args...)
	c := kubectlcmd.NewDefaultKubectlCommand()
	c.SetArgs(args)
	if err := cli.RunNoErrOutput(c); err != nil {
		kubectlutil.CheckErr(err)
	}
	return 0
}
