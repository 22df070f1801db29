package cluster

import "time"

// A write forwarded to the leader can be committed and still look failed to
// the node that sent it: the leader dies before it answers, or loses its
// leadership while the entry is already replicated to a majority. The sending
// node then retries the very same command (same Request id) with the next
// leader, and the log may end up holding it twice. The state machine applies
// a request once and answers a repeat with the first outcome, so a retry is
// never visible to the user as a second "create" that fails with "exists".
//
// What is remembered is part of the state (and of snapshots), so every node,
// however it got there, makes the same choice for the same entry.

const (
	// requestWindow is how long, in command time, an outcome is kept. A
	// retry is sent within seconds of the first attempt (the daemon gives up
	// on forwarding long before this), so two minutes leave room for clock
	// skew between the nodes that stamp commands.
	requestWindow = 2 * time.Minute
	// maxRequests bounds memory and snapshot size whatever the clocks say.
	maxRequests = 100_000
)

// requestRecord is one remembered outcome.
type requestRecord struct {
	Request  string    `json:"req"`
	Time     time.Time `json:"time"`
	Response Response  `json:"resp"`
}

// requestLog is the outcomes of recently applied requests, oldest first in
// apply order. Its zero value is empty and ready.
type requestLog struct {
	order []requestRecord
	byID  map[string]Response
}

// outcome returns the first outcome of c's request, if it was applied.
func (l *requestLog) outcome(c *Command) (Response, bool) {
	if c.Request == "" {
		return Response{}, false
	}
	r, ok := l.byID[c.Request]
	return r, ok
}

// record remembers c's outcome and forgets what fell out of the window.
// Eviction looks only at the log's own contents and c, so it is the same on
// every node.
func (l *requestLog) record(c *Command, r Response) {
	if c.Request == "" {
		return
	}
	if l.byID == nil {
		l.byID = map[string]Response{}
	}
	cutoff := c.Time.Add(-requestWindow)
	n := 0
	for n < len(l.order) && (l.order[n].Time.Before(cutoff) || len(l.order)-n >= maxRequests) {
		delete(l.byID, l.order[n].Request)
		n++
	}
	l.order = append(l.order[n:], requestRecord{Request: c.Request, Time: c.Time, Response: r})
	l.byID[c.Request] = r
}

// restore replaces the log with one read from a snapshot.
func (l *requestLog) restore(records []requestRecord) {
	l.order = records
	l.byID = make(map[string]Response, len(records))
	for _, r := range records {
		l.byID[r.Request] = r.Response
	}
}
