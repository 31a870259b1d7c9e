package engine

import (
	"strings"
	"time"
	"unicode/utf8"
)

// MaxRatingComment bounds a rating's comment, in characters after trimming.
const MaxRatingComment = 500

// Rating is the customer's satisfaction rating of a closed conversation:
// a score of 1 (worst) to 5 (best) and an optional comment. The comment is
// the customer's own words and is sealed at rest like a message body.
type Rating struct {
	Score   int       `json:"score"`
	Comment string    `json:"comment"`
	At      time.Time `json:"at"`
}

// NewRating checks a customer's score and comment and returns the rating
// made at at, its comment trimmed of surrounding white space.
func NewRating(score int, comment string, at time.Time) (Rating, error) {
	if score < 1 || score > 5 {
		return Rating{}, NewError(CodeInvalidField, "score must be an integer from 1 to 5")
	}
	comment = strings.TrimSpace(comment)
	if !utf8.ValidString(comment) {
		return Rating{}, NewError(CodeInvalidUTF8, "comment is not valid UTF-8")
	}
	if err := checkText("comment", comment, MaxRatingComment, false); err != nil {
		return Rating{}, err
	}
	return Rating{Score: score, Comment: comment, At: at}, nil
}

// RatedSinceClosed reports whether c is closed and its rating is of this
// closure: a conversation is rated once per closure, and one reopened and
// closed again may be rated again, the new rating replacing the old. A
// rating is of the current closure when it is not older than the closure,
// which is UpdatedAt while the conversation stays closed (a rating does
// not change UpdatedAt). The conversation actor stamps a change made after
// a rating at least a millisecond later than the rating, so the comparison
// holds at the stores' millisecond precision too.
func (c Conversation) RatedSinceClosed() bool {
	return c.State == StateClosed && c.Rating != nil && !c.Rating.At.Before(c.UpdatedAt)
}
