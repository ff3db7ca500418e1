module github.com/homelab-dev/homelab/e2e/journey

go 1.22
