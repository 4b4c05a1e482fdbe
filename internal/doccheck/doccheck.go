// Package doccheck holds the tests of two rules for how vmnet's Go code
// reads: every exported identifier has a doc comment, for a reader who meets
// it through go doc, and no function outside tests is longer than 80 lines.
// It has no code of its own.
package doccheck
