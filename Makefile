# Run as root: the test target installs Mininet from Debian and the BMv2
# tests create veth pairs.  BMv2/p4c are not in any package registry: where
# they are missing, their tests skip and say why.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test p4 clean

test: $(VENV)/.installed
	$(PY) -m pytest

p4: $(VENV)/.installed
	$(PY) -m beaver.p4src.compiler

$(VENV)/.installed: pyproject.toml
	command -v mn >/dev/null && command -v ethtool >/dev/null && \
	  /usr/bin/python3 -c "import ensurepip" 2>/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    mininet python3-venv ethtool iproute2)
	/usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
