#!/bin/sh
# Starts the web app at boot. Instances of the sandbox's linux runtime have
# no systemd and share the host's network, so the app binds the instance's
# own address (from /etc/hosts); on AWS a systemd unit would do this.
ip=$(awk -v h="$(hostname)" '$2 == h { print $1; exit }' /etc/hosts)
nohup /usr/local/bin/web-app -listen "${ip:-0.0.0.0}:8080" >>/var/log/web-app.log 2>&1 &
