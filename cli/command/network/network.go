// Package network is `hako network`: create, ls, inspect, rm, connect,
// disconnect and prune, with docker's flags, output and exit statuses
// (docker CLI 28 against an API 1.41 daemon).
package network
