#!/bin/sh
# The image's web-app unit starts the app at boot on 0.0.0.0:8080 (each
# instance has a network of its own, on EC2 and in the sandbox's linux
# runtime). Images baked before the unit existed start the app here.
if [ ! -e /etc/systemd/system/web-app.service ] && [ -x /usr/local/bin/web-app ]; then
  nohup /usr/local/bin/web-app -listen 0.0.0.0:8080 >>/var/log/web-app.log 2>&1 &
fi
