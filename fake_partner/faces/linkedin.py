from fake_partner.faces.base import Face


class LinkedInFace(Face):
    name = "linkedin"
