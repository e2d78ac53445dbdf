#!/bin/sh
echo "$(cat /app/greeting.txt)! (built by tsd-build, running as $(id -un))"
