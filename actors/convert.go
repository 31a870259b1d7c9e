package actors

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/kefu-dev/kefu/actors/actorpb"
	"github.com/kefu-dev/kefu/engine"
)

func partyToPB(p engine.Party) *actorpb.Party { return &actorpb.Party{Role: string(p.Role), Id: p.ID} }

func partyFromPB(p *actorpb.Party) engine.Party {
	if p == nil {
		return engine.Party{}
	}
	return engine.Party{Role: engine.Role(p.Role), ID: p.Id}
}

func bodyToPB(b engine.Body) *actorpb.Body {
	pb := &actorpb.Body{Type: string(b.Type), Text: b.Text}
	for _, o := range b.Options {
		pb.Options = append(pb.Options, &actorpb.Option{Id: o.ID, Text: o.Text})
	}
	return pb
}

func bodyFromPB(b *actorpb.Body) engine.Body {
	if b == nil {
		return engine.Body{}
	}
	body := engine.Body{Type: engine.BodyType(b.Type), Text: b.Text}
	for _, o := range b.Options {
		body.Options = append(body.Options, engine.Option{ID: o.Id, Text: o.Text})
	}
	return body
}

func messageToPB(m engine.Message) *actorpb.Message {
	return &actorpb.Message{
		Conv:        m.Conv,
		Seq:         m.Seq,
		ClientMsgId: m.ClientMsgID,
		From:        partyToPB(m.From),
		Body:        bodyToPB(m.Body),
		TsMs:        m.CreatedAt.UnixMilli(),
	}
}

func messageFromPB(tenant string, m *actorpb.Message) engine.Message {
	return engine.Message{
		Tenant:      tenant,
		Conv:        m.Conv,
		Seq:         m.Seq,
		ClientMsgID: m.ClientMsgId,
		From:        partyFromPB(m.From),
		Body:        bodyFromPB(m.Body),
		CreatedAt:   time.UnixMilli(m.TsMs).UTC(),
	}
}

func conversationToPB(c engine.Conversation) *actorpb.Conversation {
	return &actorpb.Conversation{
		Tenant:    c.Tenant,
		Id:        c.ID,
		UserId:    c.UserID,
		State:     string(c.State),
		CreatedMs: c.CreatedAt.UnixMilli(),
		UpdatedMs: c.UpdatedAt.UnixMilli(),
		AgentId:   c.AgentID,
		Invited:   c.Invited,
		Group:     c.Group,
		Priority:  int32(c.Priority),
		QueuedMs:  msOrZero(c.QueuedAt),
		Rating:    ratingToPB(c.Rating),
	}
}

func ratingToPB(r *engine.Rating) *actorpb.Rating {
	if r == nil {
		return nil
	}
	return &actorpb.Rating{Score: int32(r.Score), Comment: r.Comment, AtMs: r.At.UnixMilli()}
}

// ratingFromPB is the inverse of ratingToPB.
func ratingFromPB(r *actorpb.Rating) *engine.Rating {
	if r == nil {
		return nil
	}
	return &engine.Rating{Score: int(r.Score), Comment: r.Comment, At: time.UnixMilli(r.AtMs).UTC()}
}

// msOrZero is t in epoch milliseconds, 0 for the zero time.
func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// timeOrZero is the inverse of msOrZero.
func timeOrZero(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// ConversationFromPB converts a conversation received from an actor.
func ConversationFromPB(c *actorpb.Conversation) engine.Conversation {
	return engine.Conversation{
		Tenant:    c.Tenant,
		ID:        c.Id,
		UserID:    c.UserId,
		State:     engine.ConvState(c.State),
		CreatedAt: time.UnixMilli(c.CreatedMs).UTC(),
		UpdatedAt: time.UnixMilli(c.UpdatedMs).UTC(),
		AgentID:   c.AgentId,
		Invited:   c.Invited,
		Group:     c.Group,
		Priority:  int(c.Priority),
		QueuedAt:  timeOrZero(c.QueuedMs),
		Rating:    ratingFromPB(c.Rating),
	}
}

func noteToPB(n engine.Note) *actorpb.Note {
	return &actorpb.Note{Id: n.ID, Author: partyToPB(n.Author), Text: n.Text, TsMs: n.CreatedAt.UnixMilli()}
}

// NoteFromPB converts a note received from an actor.
func NoteFromPB(conv string, n *actorpb.Note) engine.Note {
	return engine.Note{Conv: conv, ID: n.Id, Author: partyFromPB(n.Author), Text: n.Text, CreatedAt: time.UnixMilli(n.TsMs).UTC()}
}

func pidToRef(p *actor.PID) *actorpb.PIDRef {
	if p == nil {
		return nil
	}
	return &actorpb.PIDRef{Address: p.Address, Id: p.Id}
}

func pidFromRef(r *actorpb.PIDRef) *actor.PID {
	if r == nil || r.Id == "" {
		return nil
	}
	return actor.NewPID(r.Address, r.Id)
}

func errToPB(err error) *actorpb.Error {
	if err == nil {
		return nil
	}
	code := engine.CodeOf(err)
	msg := string(code)
	var e *engine.Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	return &actorpb.Error{Code: string(code), Message: msg}
}

// errFromPB turns an error carried in a response back into an *engine.Error.
func errFromPB(e *actorpb.Error) error {
	if e == nil || e.Code == "" {
		return nil
	}
	return engine.NewError(engine.Code(e.Code), e.Message)
}

func callerToPB(c Caller) *actorpb.Caller {
	return &actorpb.Caller{Tenant: c.Tenant, Party: partyToPB(c.Party), StaffRole: string(c.StaffRole), Groups: c.Groups, Ip: c.IP}
}

func callerFromPB(c *actorpb.Caller) Caller {
	if c == nil {
		return Caller{}
	}
	return Caller{Tenant: c.Tenant, Party: partyFromPB(c.Party), StaffRole: engine.StaffRole(c.StaffRole), Groups: c.Groups, IP: c.Ip}
}
