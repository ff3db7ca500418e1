package kube

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WaitNodeReady waits until a node is registered and Ready: k3s is up when
// its own node is. (A home server is one node; an agent that is down does
// not stop the server's workloads.)
func (c *Client) WaitNodeReady(ctx context.Context, timeout time.Duration) error {
	state := "no node has registered yet"
	err := c.pollFor(ctx, timeout, func(ctx context.Context) (bool, error) {
		nodes, err := c.typed.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			state = "API server not answering: " + err.Error()
			return false, nil
		}
		if len(nodes.Items) == 0 {
			state = "no node has registered yet"
			return false, nil
		}
		for _, n := range nodes.Items {
			ok, why := nodeReady(&n)
			if ok {
				return true, nil
			}
			state = fmt.Sprintf("node %s is not Ready: %s", n.Name, why)
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for the k3s node: %w (%s)", err, state)
	}
	return nil
}

func nodeReady(n *corev1.Node) (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue, c.Reason + " " + c.Message
		}
	}
	return false, "no Ready condition reported"
}
