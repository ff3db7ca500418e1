package helm

import "helm.sh/helm/v3/pkg/action"

// ActionConfig lets helm's own tests reach release storage (to leave a
// release stuck, as an interrupted install does).
func (e *Engine) ActionConfig(namespace string) (*action.Configuration, error) {
	return e.actionConfig(namespace)
}
