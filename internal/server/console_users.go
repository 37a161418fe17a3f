package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"gabarit/internal/store"
)

// --- users ---

// usersBody is the admin's list of users and the form to add one; or, with
// Edit, the page of one user: their roles, a new password, disabling and
// enabling; with Confirm, the step that asks before disabling them.
type usersBody struct {
	Users   []userJSON
	Roles   []store.Role
	Form    newUserForm
	Edit    *userEdit
	Confirm bool // ask before disabling Edit's user
}

type newUserForm struct {
	Name  string
	Roles []store.Role
}

// Has reports whether the form had role r ticked.
func (f newUserForm) Has(r store.Role) bool { return slices.Contains(f.Roles, r) }

// userEdit is the page of one user.
type userEdit struct {
	userJSON
	Self bool // the admin's own account: they cannot disable it nor drop admin
	CLI  bool // a command-line account (cli:NAME), which has no password
	// Form are the roles ticked in the roles form: the user's, or those
	// sent with a refused change.
	Form newUserForm
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, p *principal, status int, f newUserForm, msg string) error {
	ctx := r.Context()
	users, err := s.cfg.Data.DB.Users(ctx)
	if err != nil {
		return err
	}
	b := usersBody{Roles: allRoleNames(), Form: f, Users: make([]userJSON, len(users))}
	for i, u := range users {
		b.Users[i] = toUserJSON(u)
	}
	d := s.newPage(r, p, "Users", b)
	d.Notice, d.Error = noticeOf(r), msg
	return s.render(w, status, "users", d)
}

// userPage is the page of user name; roles, when not nil, are those of a
// refused roles form, shown ticked again.
func (s *Server) userPage(w http.ResponseWriter, r *http.Request, p *principal, status int, name string, roles []store.Role, confirm bool, msg string) error {
	u, err := s.cfg.Data.DB.User(r.Context(), name)
	if err != nil {
		return userErr(err, name)
	}
	e := &userEdit{userJSON: toUserJSON(u), Self: u.Name == p.user.Name, CLI: strings.Contains(u.Name, ":"), Form: newUserForm{Name: u.Name, Roles: u.Roles}}
	if roles != nil {
		e.Form.Roles = roles
	}
	title := "User " + u.Name
	if confirm {
		title = "Disable " + u.Name + "?"
	}
	d := s.newPage(r, p, title, usersBody{Roles: allRoleNames(), Edit: e, Confirm: confirm})
	d.Notice, d.Error = noticeOf(r), msg
	return s.render(w, status, "users", d)
}

func (s *Server) pageUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.usersPage(w, r, p, http.StatusOK, newUserForm{}, "")
}

// pageUser is the page of one user, where an admin changes their roles,
// sets a new password, or disables or enables them.
func (s *Server) pageUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.userPage(w, r, p, http.StatusOK, r.PathValue("name"), nil, false, "")
}

// userDone sends the admin back to the list of users with a notice that
// names the user.
func userDone(w http.ResponseWriter, r *http.Request, notice, name string) {
	http.Redirect(w, r, "/users?"+url.Values{"notice": {notice}, "name": {name}}.Encode(), http.StatusSeeOther)
}

// pageAddUser adds a user with roles and a password, by the API's rules.
func (s *Server) pageAddUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	f := newUserForm{Name: strings.TrimSpace(r.PostForm.Get("name"))}
	roles, err := parseRoles(r.PostForm["roles"])
	if err == nil {
		f.Roles = roles
		err = s.addUser(r.Context(), f.Name, f.Roles, r.PostForm.Get("password"), p)
	}
	if err != nil {
		ae := s.pageError(r, err)
		return s.usersPage(w, r, p, ae.Status, f, capitalize(ae.Message)+".")
	}
	userDone(w, r, "user-added", f.Name)
	return nil
}

// userFailed shows a refused change on the user's page, with its status
// and message; an error that is not the user's to fix is returned.
func (s *Server) userFailed(w http.ResponseWriter, r *http.Request, p *principal, name string, roles []store.Role, err error) error {
	ae := s.pageError(r, err)
	if ae.Status >= 500 || ae.Code == "not_found" {
		return err
	}
	return s.userPage(w, r, p, ae.Status, name, roles, false, capitalize(ae.Message)+".")
}

// pageSetRoles replaces a user's roles with those ticked (at least one).
func (s *Server) pageSetRoles(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	name := r.PathValue("name")
	roles, err := parseRoles(r.PostForm["roles"])
	if err == nil {
		err = s.setUserRoles(r.Context(), name, roles, p)
	}
	if err != nil {
		if roles == nil {
			roles = []store.Role{}
		}
		return s.userFailed(w, r, p, name, roles, err)
	}
	userDone(w, r, "roles-saved", name)
	return nil
}

// pageSetPassword sets a user's new password, typed twice; it is never
// shown back, not even in a refused form.
func (s *Server) pageSetPassword(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	name := r.PathValue("name")
	pw := r.PostForm.Get("password")
	var err error
	if pw != r.PostForm.Get("password2") {
		err = badRequest("the two passwords differ: type the same new password in both fields")
	} else {
		err = s.setUserPassword(r.Context(), name, pw, p)
	}
	if err != nil {
		return s.userFailed(w, r, p, name, nil, err)
	}
	userDone(w, r, "password-set", name)
	return nil
}

// pageDisableStep asks the admin to confirm that they disable a user.
func (s *Server) pageDisableStep(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("name")
	if name == p.user.Name {
		return s.userFailed(w, r, p, name, nil, errSelfDisable)
	}
	return s.userPage(w, r, p, http.StatusOK, name, nil, true, "")
}

// pageDisableUser disables a user once the admin confirmed it
// (confirm=yes, from the confirmation step; without it, the step is shown
// first).
func (s *Server) pageDisableUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("name")
	if name == p.user.Name {
		return s.userFailed(w, r, p, name, nil, errSelfDisable)
	}
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	if r.PostForm.Get("confirm") != "yes" {
		http.Redirect(w, r, "/users/"+url.PathEscape(name)+"/disable", http.StatusSeeOther)
		return nil
	}
	if err := s.disableUser(r.Context(), name, p); err != nil {
		return s.userFailed(w, r, p, name, nil, err)
	}
	userDone(w, r, "disabled", name)
	return nil
}

// pageEnableUser enables a disabled user again.
func (s *Server) pageEnableUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("name")
	if err := s.enableUser(r.Context(), name, p); err != nil {
		return s.userFailed(w, r, p, name, nil, err)
	}
	userDone(w, r, "enabled", name)
	return nil
}
