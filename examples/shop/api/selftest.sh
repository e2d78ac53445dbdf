#!/bin/sh
# Starts the server inside the container and asks it for the catalogue over loopback.
httpd -p 127.0.0.1:8080 -h /www
sleep 0.3
wget -q -O - http://127.0.0.1:8080/items.json
