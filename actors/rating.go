package actors

import (
	"strconv"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

// noticeRated is the kind of the notice the owner of a conversation gets
// when its customer rates it.
const noticeRated = "rated"

// rate records the customer's rating of the closed conversation (OpRate
// checked who and when): in the header, replacing an earlier closure's,
// and as a rated event, stored in order with the conversation's other
// changes. It leaves UpdatedAt alone: that is the closure's time, which
// the reopen window runs from. Everyone following the conversation gets a
// rated push, and its owner a notice.
func (a *conversationActor) rate(ctx actor.Context, caller Caller, score int, comment string) error {
	at := a.d.Clock.Now()
	if at.Before(a.conv.UpdatedAt) {
		at = a.conv.UpdatedAt // a rating is of this closure, whatever the clock did
	}
	r, err := engine.NewRating(score, comment, at)
	if err != nil {
		return err
	}
	a.conv.Rating = &r
	a.record(ctx, "a rating", engine.ConvEvent{
		Tenant: a.tenant, Conv: a.id, Type: engine.EventRated, From: engine.StateClosed, To: engine.StateClosed,
		By: caller.Party, Score: r.Score, Note: r.Comment, At: r.At,
	})
	a.push(ctx, nil, &actorpb.Push{Conv: a.id, Event: &actorpb.Push_Rated{Rated: ratingToPB(&r)}})
	text := "客户评分 " + strconv.Itoa(r.Score) + " 分"
	if r.Comment != "" {
		text += "：" + r.Comment
	}
	a.notifyAgent(ctx, a.conv.AgentID, noticeRated, text)
	return nil
}
