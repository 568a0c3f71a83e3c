package docker

import (
	"net/http"
	"net/netip"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"

	"github.com/hako-project/hako/engine"
	"github.com/hako-project/hako/errdefs"
	"github.com/hako-project/hako/network"
)

func (s *Server) routesNetworks() {
	s.handle("GET /networks", s.networkList)
	s.handle("GET /networks/{id}", s.networkInspect)
	s.handle("POST /networks/create", s.networkCreate)
	s.handle("DELETE /networks/{id}", s.networkRemove)
	s.handle("POST /networks/{id}/connect", s.networkConnect)
	s.handle("POST /networks/{id}/disconnect", s.networkDisconnect)
	s.handle("POST /networks/prune", s.networkPrune)
}

// networkJSON is a network as docker 20.10 shows it; containers are
// listed by inspect only.
func (s *Server) networkJSON(n network.Network, withContainers bool) nettypes.Inspect {
	driver := n.Driver
	out := nettypes.Inspect{Network: nettypes.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: driver, EnableIPv4: true,
		IPAM:     nettypes.IPAM{Driver: "default", Config: []nettypes.IPAMConfig{}},
		Internal: n.Internal, Options: n.Options, Labels: n.Labels,
	}, Containers: map[string]nettypes.EndpointResource{}}
	if n.IPAMDriver != "" {
		out.IPAM.Driver = n.IPAMDriver
	}
	if driver == "bridge" {
		out.IPAM.Options = n.IPAMOptions
		if out.IPAM.Options == nil {
			out.IPAM.Options = map[string]string{}
		}
		cfg := nettypes.IPAMConfig{Subnet: n.Subnet, IPRange: n.IPRange}
		if !n.UserSubnet || n.UserGateway {
			cfg.Gateway = n.Gateway
		}
		out.IPAM.Config = []nettypes.IPAMConfig{cfg}
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if withContainers && s.e.Networks() != nil {
		for _, ep := range s.e.Networks().Endpoints(n.ID) {
			name := ep.Name
			if c, err := s.e.Get(ep.ContainerID); err == nil {
				name = c.Snapshot().Name
			}
			var hw nettypes.HardwareAddr
			_ = hw.UnmarshalText([]byte(ep.MAC))
			out.Containers[ep.ContainerID] = nettypes.EndpointResource{
				Name: name, EndpointID: ep.EndpointID, MacAddress: hw, IPv4Address: ep.Address,
			}
		}
	}
	return out
}

func (s *Server) networks() []network.Network {
	if s.e.Networks() == nil {
		return nil
	}
	return s.e.Networks().List()
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	for k := range f {
		switch k {
		case "driver", "id", "label", "name", "scope", "type", "dangling":
		default:
			return errdefs.Invalidf("Invalid filter '%s'", k)
		}
	}
	for _, v := range f["type"] {
		if v != "custom" && v != "builtin" {
			return errdefs.Invalidf("invalid filter: 'type'='%s'", v)
		}
	}
	out := []nettypes.Inspect{}
	for _, n := range s.networks() {
		if !s.networkMatches(f, n) {
			continue
		}
		out = append(out, s.networkJSON(n, false))
	}
	return writeJSON(w, http.StatusOK, out)
}

// networkMatches applies docker network ls's filters: name and id match
// substrings and prefixes as docker's do.
func (s *Server) networkMatches(f filters, n network.Network) bool {
	if !f.any("name", func(v string) bool { return strings.Contains(n.Name, v) }) {
		return false
	}
	if !f.any("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) {
		return false
	}
	if !f.any("driver", func(v string) bool { return n.Driver == v }) {
		return false
	}
	if !f.any("scope", func(v string) bool { return v == "local" }) {
		return false
	}
	if !f.any("label", func(v string) bool { return labelMatch(n.Labels, v) }) {
		return false
	}
	if !f.any("type", func(v string) bool { return (v == "builtin") == n.Predefined() }) {
		return false
	}
	dangling := func() bool {
		return !n.Predefined() && (s.e.Networks() == nil || len(s.e.Networks().Endpoints(n.ID)) == 0)
	}
	return f.any("dangling", func(v string) bool { return (v == "true" || v == "1") == dangling() })
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request) error {
	if s.e.Networks() == nil {
		return errdefs.NotFoundf("network %s not found", r.PathValue("id"))
	}
	n, err := s.e.Networks().Get(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.networkJSON(n, true))
}

// networkCreateRequest is POST /networks/create as docker's clients send
// it, addresses as the user wrote them, so that a malformed one gets
// docker's message rather than a JSON error.
type networkCreateRequest struct {
	Name       string
	Driver     string
	Internal   bool
	EnableIPv6 *bool
	IPAM       *struct {
		Driver  string
		Options map[string]string
		Config  []struct {
			Subnet     string
			IPRange    string
			Gateway    string
			AuxAddress map[string]string `json:"AuxiliaryAddresses"`
		}
	}
	Options map[string]string
	Labels  map[string]string
	// Swarm-only settings hakod refuses.
	Attachable bool
	Ingress    bool
	ConfigOnly bool
	ConfigFrom *struct{ Network string }
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request) error {
	var req networkCreateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return errdefs.NotImplementedf("IPv6 networks are not supported by hakod")
	}
	if req.Ingress || req.ConfigOnly || (req.ConfigFrom != nil && req.ConfigFrom.Network != "") {
		return errdefs.NotImplementedf("swarm networks (ingress, config-only, config-from) are not supported by hakod")
	}
	cr := network.CreateRequest{
		Name: req.Name, Driver: req.Driver, Internal: req.Internal, Labels: req.Labels, Options: req.Options,
	}
	if req.IPAM != nil {
		cr.IPAMDriver, cr.IPAMOptions = req.IPAM.Driver, req.IPAM.Options
		var v4 int
		for _, c := range req.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is6() {
				return errdefs.NotImplementedf("IPv6 networks are not supported by hakod: %s", c.Subnet)
			}
			if v4++; v4 > 1 {
				return errdefs.NotImplementedf("hakod supports one IPv4 subnet per network")
			}
			if len(c.AuxAddress) > 0 {
				return errdefs.NotImplementedf("auxiliary addresses (--aux-address) are not supported by hakod")
			}
			cr.Subnet, cr.IPRange, cr.Gateway = c.Subnet, c.IPRange, c.Gateway
		}
	}
	n, err := s.e.CreateNetwork(r.Context(), cr)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, nettypes.CreateResponse{ID: n.ID})
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.RemoveNetwork(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request) error {
	var req nettypes.ConnectRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.e.ConnectNetwork(r.Context(), req.Container, r.PathValue("id"), req.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request) error {
	var req nettypes.DisconnectRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.e.DisconnectNetwork(r.Context(), req.Container, r.PathValue("id"), req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request) error {
	f, until, err := pruneFilters(r, "until", "label", "label!") // prune.go
	if err != nil {
		return err
	}
	keep := func(n network.Network) bool {
		return (!until.IsZero() && !n.Created.Before(until)) || !labelsMatch(f, n.Labels)
	}
	names, err := s.e.PruneNetworks(r.Context(), keep)
	if err != nil {
		return err
	}
	sort.Strings(names)
	if names == nil {
		names = []string{}
	}
	return writeJSON(w, http.StatusOK, nettypes.PruneReport{NetworksDeleted: names})
}

// summaryNetworks fills a docker ps row's ports and networks.
func (s *Server) summaryNetworks(sm *container.Summary, rec engine.Record) {
	sm.Ports = s.e.PortSummaries(rec)
	sm.NetworkSettings = &container.NetworkSettingsSummary{Networks: s.e.NetworkSettings(rec).Networks}
}
