// Package doccheck holds the test that every exported identifier in vmnet's
// Go code has a doc comment, the project's rule for code a reader meets
// through go doc. It has no code of its own.
package doccheck
