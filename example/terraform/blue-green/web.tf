# Two colours, blue and green: Auto Scaling groups that share one launch
# template on its "$Latest" version, each in its own target group. Blue is
# live at first; green has no instances until a deploy brings it up.
#
# A phoenix deploy creates a launch template version with only the AMI
# changed, holds both groups on numbered versions, brings the idle colour up
# on the new version at the live colour's capacity (its minimum pinned there
# while traffic moves, with a phoenix:pin tag), moves the weights, gives it
# the old colour's minimum and maximum, scales the old colour to zero, and
# puts "$Latest" back on both groups. See docs/terraform.md.

resource "aws_security_group" "web" {
  name        = "${var.name}-web"
  description = "The ${var.name} web servers"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "web_from_alb" {
  security_group_id            = aws_security_group.web.id
  description                  = "The app, from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "web_https" {
  security_group_id = aws_security_group.web.id
  description       = "HTTPS to AWS APIs and the app's dependencies"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_launch_template" "web" {
  name                   = var.name
  image_id               = var.ami_id
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.web.id]
  user_data              = base64encode(templatefile("${path.module}/user-data.sh.tftpl", { port = var.app_port }))
  update_default_version = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name    = var.name
      Service = var.name
    }
  }

  lifecycle {
    # As in ../web.tf: the provider reads the latest version, which each
    # deploy makes, with phoenix's image and description.
    ignore_changes = [image_id, description]
  }
}

resource "aws_autoscaling_group" "blue" {
  name                      = "${var.name}-blue"
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = var.subnet_ids
  target_group_arns         = [aws_lb_target_group.blue.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 60

  launch_template {
    id      = aws_launch_template.web.id
    version = "$Latest"
  }

  tag {
    key                 = "Service"
    value               = var.name
    propagate_at_launch = true
  }

  lifecycle {
    # The capacity follows the live colour: a switch gives the new colour
    # the old one's minimum (and maximum) and scales the old one to zero.
    # These are Terraform's values for the first apply only; an apply that
    # set them again would scale the live colour to zero, or keep an idle
    # one running. max_size is not ignored: both colours have the same.
    ignore_changes = [min_size, desired_capacity]
  }
}

resource "aws_autoscaling_group" "green" {
  name                      = "${var.name}-green"
  min_size                  = 0
  max_size                  = var.max_size
  desired_capacity          = 0
  vpc_zone_identifier       = var.subnet_ids
  target_group_arns         = [aws_lb_target_group.green.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 60

  launch_template {
    id      = aws_launch_template.web.id
    version = "$Latest"
  }

  tag {
    key                 = "Service"
    value               = var.name
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [min_size, desired_capacity]
  }
}
