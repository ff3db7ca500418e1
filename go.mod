module github.com/homelab-dev/homelab

go 1.26.8
