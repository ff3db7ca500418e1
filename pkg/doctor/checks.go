package doctor

import "context"

// Checks returns every check doctor runs for env, in report order. An error
// means doctor cannot run at all (the expected files do not render).
func Checks(env Env) ([]Check, error) {
	d, err := newDoctor(env)
	if err != nil {
		return nil, err
	}
	var checks []Check
	for _, group := range [][]Check{
		d.hostChecks(),
		d.k3sChecks(),
		clusterChecks(d.cfg, d.Cluster, d.ClusterError),
		d.monitoringChecks(),
		d.appChecks(),
		d.grafanaChecks(),
		d.nginxChecks(),
		d.tlsChecks(),
	} {
		checks = append(checks, group...)
	}
	return checks, nil
}

// Run builds the checks for env and runs them.
func Run(ctx context.Context, env Env, r Runner) (Report, error) {
	checks, err := Checks(env)
	if err != nil {
		return Report{}, err
	}
	return r.Run(ctx, checks)
}
