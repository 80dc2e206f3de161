// Package docs holds the guides crewmail serves to people: the member guide, embedded so the
// server can serve it over HTTP and the welcome mail can link to it. The operator guide
// (operator.md) and the configuration reference (config.md) live beside it and are read in the
// source tree; a test keeps config.md in step with the config package.
package docs

import _ "embed"

// Member is the member guide (member.md, Markdown): joining, posting, replying, digests,
// leaving and reading the archive in a mail program, for a list written as crew@example.org.
//
//go:embed member.md
var Member string
