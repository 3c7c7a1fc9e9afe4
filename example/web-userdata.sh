#!/bin/sh
# Starts the web app at boot on every address of the instance, as on EC2
# (each instance of the sandbox's linux runtime has a network of its own).
# Instances of the linux runtime have no systemd yet; on AWS a systemd unit
# would do this.
nohup /usr/local/bin/web-app -listen 0.0.0.0:8080 >>/var/log/web-app.log 2>&1 &
