package scrapesource

// MaxBody is maxBody, for the tests.
const MaxBody = maxBody
